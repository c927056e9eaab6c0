"""Settings come from the environment once, typed, with no default credential."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import Settings


def test_defaults_have_no_credential() -> None:
    settings = Settings.from_env({})
    assert settings.tokens == {}
    assert settings.odoo_password.get_secret_value() == ""
    assert settings.database_url.startswith("sqlite://")


def test_parsing() -> None:
    settings = Settings.from_env(
        {
            "GATEWAY_TOKENS": "a=demo, b=other",
            "GATEWAY_ALLOWED_ORIGINS": "http://x.example/, https://y.example",
            "GATEWAY_PORT": "9000",
            "ODOO_TIMEOUT": "60",
            "ODOO_PASSWORD": "s3cret",
        }
    )
    assert settings.tokens == {"a": "demo", "b": "other"}
    assert settings.allowed_origins == ("http://x.example", "https://y.example")
    assert settings.port == 9000
    assert settings.effective_lease_seconds == 90.0
    assert "s3cret" not in repr(settings) and "tokens" not in repr(settings)


@pytest.mark.parametrize(
    "env",
    [
        {"GATEWAY_TOKENS": "no-principal"},
        {"GATEWAY_PORT": "x"},
        {"TASK_MAX_ATTEMPTS": "0"},
        {"LOG_FORMAT": "xml"},
        {"WORKER_METRICS_PORT": "70000"},
        # The operators' credential may not also be a tenant's.
        {"GATEWAY_TOKENS": "same-token=demo", "GATEWAY_ADMIN_TOKEN": "same-token"},
    ],
)
def test_bad_values_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ValidationError):
        Settings.from_env(env)


def test_origin_policy() -> None:
    from gateway.auth import OriginPolicy

    policy = OriginPolicy(["https://app.example/"])
    assert policy.allows(None)
    assert policy.allows("https://APP.example")
    assert not policy.allows("http://evil.example")
    assert not policy.allows("https://app.example.evil.example")
    # No Host-equals-Origin shortcut: a DNS-rebinding page has matching Origin and Host.
    assert not policy.allows("http://127.0.0.1:8000")


def test_odoo_api_settings() -> None:
    assert Settings.from_env({}).odoo_api == "jsonrpc"
    settings = Settings.from_env({"ODOO_API": " JSON2 ", "ODOO_API_KEY": "k-s3cret"})
    assert settings.odoo_api == "json2"
    assert settings.odoo_api_key.get_secret_value() == "k-s3cret"
    assert "k-s3cret" not in repr(settings)
    assert Settings.from_env({"ODOO_API": "auto"}).odoo_api == "auto"
    with pytest.raises(ValidationError):
        Settings.from_env({"ODOO_API": "xmlrpc"})


def test_operations_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "LOG_FORMAT": "json",
            "GATEWAY_ADMIN_TOKEN": "ops-s3cret",
            "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "2.5",
            "WORKER_METRICS_PORT": "0",
            "ODOO_STARTUP_WAIT": "60",
        }
    )
    assert (settings.log_format, settings.shutdown_drain_seconds, settings.worker_metrics_port) == ("json", 2.5, 0)
    assert settings.admin_token.get_secret_value() == "ops-s3cret" and "ops-s3cret" not in repr(settings)
    assert settings.odoo_startup_wait == 60.0
