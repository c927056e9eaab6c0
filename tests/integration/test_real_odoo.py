"""The task kinds against a real Odoo (the official image) through testcontainers, where a
Docker engine exists: Odoo 17 over JSON-RPC (odoorpc) and Odoo 19 over JSON-2 (an API key,
no login). These machines have none: the tests skip and say so."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from shared.config import Settings
from shared.kinds import KINDS, task_reference
from workers.odoo_api import OdooAdapter, open_odoo

# (image tag, ODOO_API): JSON-RPC where odoorpc works (14-21), JSON-2 from 19.
ODOOS = [("17.0", "jsonrpc"), ("19.0", "json2")]

# Run inside the Odoo container (``odoo shell``): a key for the admin user, printed once.
# Odoo 19's _generate(scope, name, expiration_date): scope None = every RPC (JSON-2 needs a
# global key), no expiration is allowed for a system user.
MAKE_KEY = (
    "admin = env.ref('base.user_admin'); "
    "key = env['res.users.apikeys'].with_user(admin)._generate(None, 'gateway tests', None); "
    "env.cr.commit(); print('API-KEY=' + key)"
)


def _docker_available() -> str | None:
    try:
        import docker

        docker.from_env().ping()
    except Exception as exc:  # any failure means "no engine here"
        return f"no Docker engine reachable ({type(exc).__name__}); the Odoo stand-in covers these paths"
    return None


def _api_key(odoo: Any) -> str:
    shell = "odoo shell -d odoo --db_host db --db_user odoo --db_password odoo --no-http --log-level=warn"
    code, output = odoo.exec(["sh", "-c", f'echo "{MAKE_KEY}" | {shell}'])
    text = output.decode(errors="replace") if isinstance(output, bytes) else str(output)
    match = re.search(r"API-KEY=(\S+)", text)
    assert code == 0 and match, f"could not create an API key in the Odoo container: {text[-2000:]}"
    return match.group(1)


@pytest.fixture(scope="module", params=ODOOS, ids=[f"odoo{v}-{api}" for v, api in ODOOS])
def real_odoo(request: pytest.FixtureRequest) -> Iterator[Settings]:
    reason = _docker_available()
    if reason is not None:
        pytest.skip(reason)
    version, api = request.param
    from testcontainers.core.container import DockerContainer
    from testcontainers.core.network import Network
    from testcontainers.core.waiting_utils import wait_for_logs

    with Network() as network:
        postgres = (
            DockerContainer("postgres:16")
            .with_env("POSTGRES_USER", "odoo")
            .with_env("POSTGRES_PASSWORD", "odoo")
            .with_env("POSTGRES_DB", "postgres")
            .with_network(network)
            .with_network_aliases("db")
        )
        with postgres:
            wait_for_logs(postgres, "database system is ready to accept connections", timeout=120)
            odoo = (
                DockerContainer(f"odoo:{version}")
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
                values: dict[str, Any] = {
                    "odoo_url": f"http://{host}:{port}",
                    "odoo_db": "odoo",
                    "odoo_user": "admin",
                    "odoo_version": version,
                    "odoo_timeout": 60,
                    "odoo_api": api,
                }
                if api == "json2":
                    values["odoo_api_key"] = _api_key(odoo)  # no password: the key alone
                else:
                    values["odoo_password"] = "admin"
                yield Settings.model_validate(values)


def _demo_data(odoo: OdooAdapter, version: str) -> None:
    odoo.execute_kw("res.partner", "create", [], {"vals_list": [{"name": "Demo Customer"}]})
    storable = {"type": "product"} if version < "18" else {"type": "consu", "is_storable": True}
    odoo.execute_kw(
        "product.product", "create", [], {"vals_list": [{"name": "Demo 1", "default_code": "DEMO-001", **storable}]}
    )


@pytest.mark.docker
def test_both_kinds_on_real_odoo(real_odoo: Settings) -> None:
    odoo = open_odoo(real_odoo)
    assert odoo.api == real_odoo.odoo_api
    _demo_data(odoo, real_odoo.odoo_version)
    sale, count = KINDS["sale.order.create"], KINDS["inventory.adjust"]

    ref = task_reference(str(uuid.uuid4()))
    order = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}
    assert sale.find_effect(odoo, ref, order) is None
    result = sale.apply(odoo, ref, order)
    assert sale.find_effect(odoo, ref, order) == result

    ref = task_reference(str(uuid.uuid4()))
    counted = {"location": "WH/Stock", "lines": [{"product": "DEMO-001", "quantity": 12}]}
    assert count.find_effect(odoo, ref, counted) is None
    applied = count.apply(odoo, ref, counted)
    assert applied["changed"] is True and applied["move_ids"]
    found = count.find_effect(odoo, ref, counted)
    assert found is not None and found["move_ids"] == applied["move_ids"]
