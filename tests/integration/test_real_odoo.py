"""The task kinds against a real Odoo (the official image) through testcontainers, where a
Docker engine exists. These machines have none: the test skips and says so."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from shared.config import Settings
from shared.kinds import KINDS, task_reference
from workers.odoo_client import OdooRpcClient


def _docker_available() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # any failure means "no engine here"
        return f"no Docker engine reachable ({type(exc).__name__}); the Odoo stand-in covers these paths"
    return None


@pytest.fixture(scope="module")
def real_odoo() -> Iterator[Settings]:
    reason = _docker_available()
    if reason is not None:
        pytest.skip(reason)
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.waiting_utils import wait_for_logs

    with Network() as network:
        postgres = (
            DockerContainer("postgres:15")
            .with_env("POSTGRES_USER", "odoo")
            .with_env("POSTGRES_PASSWORD", "odoo")
            .with_env("POSTGRES_DB", "postgres")
            .with_network(network)
            .with_network_aliases("db")
        )
        with postgres:
            wait_for_logs(postgres, "database system is ready to accept connections", timeout=120)
            odoo = (
                DockerContainer("odoo:17.0")
                .with_env("HOST", "db")
                .with_env("USER", "odoo")
                .with_env("PASSWORD", "odoo")
                .with_network(network)
                .with_exposed_ports(8069)
                .with_command("-d odoo -i stock,sale_management --without-demo=all")
            )
            with odoo:
                wait_for_logs(odoo, "HTTP service (werkzeug) running", timeout=600)
                time.sleep(5)
                host, port = odoo.get_container_host_ip(), odoo.get_exposed_port(8069)
                yield Settings(
                    odoo_url=f"http://{host}:{port}",
                    odoo_db="odoo",
                    odoo_user="admin",
                    odoo_password="admin",
                    odoo_version="17.0",
                    odoo_timeout=60,
                )  # type: ignore[arg-type]


@pytest.mark.docker
def test_sale_order_kind_on_real_odoo(real_odoo: Settings) -> None:
    odoo = OdooRpcClient(real_odoo)
    partner = odoo.execute_kw("res.partner", "create", [{"name": "Demo Customer"}])
    odoo.execute_kw("product.product", "create", [{"name": "Demo 1", "default_code": "DEMO-001"}])
    ref = task_reference(str(uuid.uuid4()))
    payload = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}
    kind = KINDS["sale.order.create"]
    assert kind.find_effect(odoo, ref, payload) is None
    result = kind.apply(odoo, ref, payload)
    assert kind.find_effect(odoo, ref, payload) == result
    assert partner > 0
