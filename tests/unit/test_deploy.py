"""The deployment files, checked by parsing them (no Docker engine here to run
``docker compose config``): services, healthchecks, start order, restart policies, one
password per secret, a small build context, and systemd units that wait for the network."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
LONG_RUNNING = ("rabbitmq", "postgres", "odoo", "gateway-a", "gateway-b", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    return document


def depends(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


def test_every_service_is_there_and_long_running_ones_restart_and_report_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {"rabbitmq-definitions", *LONG_RUNNING, "odoo-init"}
    for name in LONG_RUNNING:
        assert services[name].get("restart") in ("always", "unless-stopped"), name
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    for one_shot in ("rabbitmq-definitions", "odoo-init"):
        assert services[one_shot]["restart"] == "no"


def test_start_order_waits_for_health_not_for_start(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert depends(services["odoo-init"]) == {"postgres": "service_healthy"}
    assert depends(services["odoo"]) == {"odoo-init": "service_completed_successfully"}
    assert depends(services["worker"]) == {
        "rabbitmq": "service_healthy",
        "postgres": "service_healthy",
        "odoo": "service_healthy",
    }
    for gateway in ("gateway-a", "gateway-b"):
        assert depends(services[gateway]) == {"rabbitmq": "service_healthy", "postgres": "service_healthy"}
    assert depends(services["rabbitmq"]) == {"rabbitmq-definitions": "service_completed_successfully"}
    assert "/web/health" in " ".join(services["odoo"]["healthcheck"]["test"])
    assert "/readyz" in " ".join(services["gateway-a"]["healthcheck"]["test"])


def test_odoo_database_init_installs_stock_and_sales() -> None:
    script = (DEPLOY / "odoo-init.sh").read_text()
    assert re.search(r"-i stock,sale_management\b", script) and "--stop-after-init" in script
    assert "ODOO_PASSWORD" in script


def test_one_password_variable_per_secret_and_none_hard_coded(compose: dict[str, Any]) -> None:
    services = compose["services"]
    odoo_db = "${ODOO_DB_PASSWORD:?set ODOO_DB_PASSWORD}"
    assert services["odoo"]["environment"]["PASSWORD"] == odoo_db
    assert services["odoo-init"]["environment"]["PASSWORD"] == odoo_db
    assert services["postgres"]["environment"]["ODOO_DB_PASSWORD"] == odoo_db
    init = (DEPLOY / "postgres-init.sh").read_text()
    assert "PASSWORD :'odoo_password'" in init and "$ODOO_DB_PASSWORD" in init
    assert not (DEPLOY / "postgres-init.sql").exists()
    text = (DEPLOY / "docker-compose.yml").read_text()
    assert not re.search(r"PASSWORD: (?!\$\{)", text), "a password that is not a variable"
    gateway_env = services["gateway-a"]["environment"]
    assert "ODOO_PASSWORD" not in gateway_env and gateway_env["GATEWAY_ADMIN_TOKEN"].startswith(
        "${GATEWAY_ADMIN_TOKEN:?"
    )


def test_image_is_pinned_and_the_build_context_small() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert base is not None and re.fullmatch(r"python:3\.11\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base.group(1))
    assert "-c deploy/constraints.txt" in dockerfile
    pins = [line for line in (DEPLOY / "constraints.txt").read_text().splitlines() if not line.startswith("#")]
    assert pins and all(re.fullmatch(r"[a-z0-9-]+==[\w.]+", line) for line in pins)
    assert {"dramatiq", "prometheus-client", "uvicorn", "aio-pika"} <= {line.split("==")[0] for line in pins}
    ignored = (DEPLOY.parent / ".dockerignore").read_text().splitlines()
    assert {".venv", ".git", "tests", "deploy/.env"} <= set(ignored)


def unit(name: str) -> dict[str, list[str]]:
    """A systemd unit as key -> values (keys may repeat)."""
    values: dict[str, list[str]] = {}
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


@pytest.mark.parametrize("name", ["odoo-gateway@.service", "odoo-gateway-worker.service"])
def test_systemd_units_wait_for_the_network_and_are_sandboxed(name: str) -> None:
    values = unit(name)
    assert values["Wants"] == ["network-online.target"] and "network-online.target" in values["After"][0]
    assert values["StateDirectory"] == ["odoo-gateway"] and values["WorkingDirectory"] == ["%S/odoo-gateway"]
    for option in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "RestrictSUIDSGID"):
        assert values[option] == ["yes"], option
    assert values["ProtectSystem"] == ["strict"] and values["CapabilityBoundingSet"] == [""]
    assert values["KillMode"] == ["mixed"] and values["Restart"] == ["always"]


def test_the_gateway_unit_is_a_template_per_port() -> None:
    values = unit("odoo-gateway@.service")
    assert "GATEWAY_PORT=%i" in values["Environment"]
    assert not (DEPLOY / "systemd" / "odoo-gateway.service").exists()
