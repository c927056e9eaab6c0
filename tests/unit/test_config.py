"""Settings come from the environment once, typed, with no default credential."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from shared.config import Settings, markdown_table

README = Path(__file__).resolve().parents[2] / "README.md"


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


# --- pydantic-settings: variable names in errors, secret files, the README table ---


def test_errors_name_the_variable_and_hide_the_value() -> None:
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"GATEWAY_PORT": "eighty", "GATEWAY_TOKENS": "t0ken-s3cret"})
    assert {error["loc"] for error in caught.value.errors()} == {("GATEWAY_PORT",), ("GATEWAY_TOKENS",)}
    text = str(caught.value)
    assert "GATEWAY_PORT" in text and "eighty" not in text and "t0ken-s3cret" not in text


def test_only_documented_variables_are_read() -> None:
    # The Python field names are not variables: ``port=1`` in the environment is ignored.
    settings = Settings.from_env({"port": "1", "odoo_password": "x", "GATEWAY_HOST": "0.0.0.0"})
    assert (settings.port, settings.odoo_password.get_secret_value(), settings.host) == (8000, "", "0.0.0.0")
    # An empty variable is unset, as before.
    assert Settings.from_env({"GATEWAY_PORT": ""}).port == 8000


def test_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_WS_AUTH_TIMEOUT", "2.5")
    assert Settings.from_env().ws_auth_timeout == 2.5
    # Settings(...) takes Python values only, never the environment.
    assert Settings().ws_auth_timeout == 5.0


def test_secret_read_from_a_secrets_dir(tmp_path: Path) -> None:
    (tmp_path / "ODOO_API_KEY").write_text("k-from-file\n")
    (tmp_path / "GATEWAY_TOKENS").write_text("file-token=demo\n")
    (tmp_path / "event_signing_key").write_text("a field name is not a variable")
    settings = Settings.from_env({"SETTINGS_SECRETS_DIR": str(tmp_path)})
    assert settings.odoo_api_key.get_secret_value() == "k-from-file"
    assert settings.tokens == {"file-token": "demo"}
    assert settings.event_signing_key.get_secret_value() == ""
    assert "k-from-file" not in repr(settings) and "file-token" not in repr(settings)
    # The environment wins over the file; an empty variable does not.
    env = {"SETTINGS_SECRETS_DIR": str(tmp_path), "ODOO_API_KEY": "k-from-env", "GATEWAY_TOKENS": ""}
    settings = Settings.from_env(env)
    assert settings.odoo_api_key.get_secret_value() == "k-from-env"
    assert settings.tokens == {"file-token": "demo"}


def test_systemd_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "EVENT_SIGNING_KEY").write_text("signing-key-from-systemd")
    settings = Settings.from_env({"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert settings.event_signing_key.get_secret_value() == "signing-key-from-systemd"


def test_bad_value_in_a_secret_file_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "TASK_MAX_ATTEMPTS").write_text("0")
    with pytest.raises(ValidationError) as caught:
        Settings.from_env({"SETTINGS_SECRETS_DIR": str(tmp_path)})
    assert caught.value.errors()[0]["loc"] == ("TASK_MAX_ATTEMPTS",)


def test_a_missing_secrets_dir_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="SETTINGS_SECRETS_DIR"):
        Settings.from_env({"SETTINGS_SECRETS_DIR": str(tmp_path / "nowhere")})


def test_every_field_has_a_variable_and_a_description() -> None:
    variables = [field.validation_alias for field in Settings.model_fields.values()]
    assert len(set(variables)) == len(variables)
    for name, field in Settings.model_fields.items():
        assert isinstance(field.validation_alias, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", field.validation_alias)
        assert field.description, f"{name} ({field.validation_alias}) has no description"


def test_readme_configuration_table_is_generated_from_the_model() -> None:
    readme = README.read_text()
    start = readme.index("<!-- generated by: python -m shared.config --markdown -->\n")
    start = readme.index("\n", start) + 1
    end = readme.index("<!-- end of generated table -->", start)
    assert readme[start:end] == markdown_table(), "run: .venv/bin/python -m shared.config --markdown"


def test_readme_hostile_peers_defaults_match_the_model() -> None:
    by_variable = {field.validation_alias: field for field in Settings.model_fields.values()}
    rows = re.findall(r"^\| [^|]+ \| `([A-Z_]+)` \| `([0-9.]+)`", README.read_text(), re.MULTILINE)
    assert len(rows) >= 12
    for variable, shown in rows:
        assert variable in by_variable, variable
        assert float(shown) == by_variable[variable].default, variable
