"""Settings, read once from the environment into one typed object.

``Settings.from_env()`` reads each field from its documented environment variable (the
field's ``validation_alias``; nothing else is read, and a variable set to "" counts as
unset), then from a file of the same name in the secrets directories (Docker's
``/run/secrets``, systemd's ``$CREDENTIALS_DIRECTORY``, or ``SETTINGS_SECRETS_DIR``); the
environment wins. Validation errors name the variable, never the Python field, and never
echo the value. ``Settings(**fields)`` builds one from Python values only, for tests.

The README "Configuration" table is generated from the fields' descriptions:
``python -m shared.config --markdown`` (``tests/unit/test_config.py`` checks it is current).
There is no default credential: ``GATEWAY_TOKENS`` is empty unless set.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

__all__ = ["SECRETS_DIR_VARIABLE", "Settings", "markdown_table", "secrets_dirs"]

SECRETS_DIR_VARIABLE = "SETTINGS_SECRETS_DIR"
DOCKER_SECRETS_DIR = Path("/run/secrets")

# The environment (a mapping) that ``Settings.from_env`` is reading; None outside it, where
# ``Settings(...)`` takes Python values only.
_reading: ContextVar[Mapping[str, str] | None] = ContextVar("settings_environ", default=None)


def _var(default: Any, variable: str, description: str, *, shown: str | None = None, **constraints: Any) -> Any:
    """A field read from ``variable``; ``shown`` overrides the default the README shows."""
    extra: JsonDict | None = {"readme_default": shown} if shown is not None else None
    return Field(default, validation_alias=variable, description=description, json_schema_extra=extra, **constraints)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True,
        case_sensitive=True,
        env_ignore_empty=True,
        # Tests and callers build one by field name; the environment is read by variable name only.
        validate_by_name=True,
        validate_by_alias=True,
        # A bad GATEWAY_TOKENS or key must not end up in a log line through the error.
        hide_input_in_errors=True,
        extra="ignore",
    )

    amqp_url: str = _var(
        "amqp://guest:guest@127.0.0.1:5672/%2F",
        "AMQP_URL",
        "RabbitMQ, for gateway and workers (its password makes it a secret)",
        repr=False,
    )
    database_url: str = _var(
        "sqlite:///var/gateway.sqlite3",
        "DATABASE_URL",
        "task store: `sqlite:///relative`, `sqlite:////absolute`, or `postgresql://user@host/db`. "
        "Workers use it too (leases)",
        repr=False,
    )
    # token -> principal (tenant). Parsed from "token1=tenant1,token2=tenant2" (NoDecode: not JSON).
    tokens: Annotated[dict[str, str], NoDecode] = _var(
        {},
        "GATEWAY_TOKENS",
        "`token1=tenant1,token2=tenant2`; kept only as SHA-256 digests. A secret",
        shown="*(empty: everything refused)*",
        repr=False,
    )
    allowed_origins: Annotated[tuple[str, ...], NoDecode] = _var(
        (),
        "GATEWAY_ALLOWED_ORIGINS",
        "comma-separated origins allowed to open a WebSocket from a browser, the page served at `/` included "
        "(no Host-equals-Origin shortcut); the same origins get CORS on the HTTP API (`GET`/`POST`; "
        "`Authorization`, `Content-Type`, `Idempotency-Key` allowed; `Location`, `Retry-After` exposed; "
        "no cookies), so the browser module works from a page served elsewhere",
    )
    # HMAC key workers sign task events with and gateways verify (shared/signing.py).
    event_signing_key: SecretStr = _var(
        SecretStr(""),
        "EVENT_SIGNING_KEY",
        "HMAC key workers sign task events with and gateways verify; 16+ bytes, the same on both, known to "
        "nobody else. `make run` makes a fresh one per run. A secret",
        shown="*(none: gateway and workers refuse to start)*",
    )
    # The token the page at ``/`` comes pre-filled with: only ``make run`` sets one.
    demo_token: SecretStr = _var(
        SecretStr(""),
        "GATEWAY_DEMO_TOKEN",
        "a token the page at `/` comes pre-filled with; only `make run` sets one (`dev-token`)",
    )
    host: str = _var("127.0.0.1", "GATEWAY_HOST", "where `python -m gateway` listens (address)")
    port: int = _var(8000, "GATEWAY_PORT", "where `python -m gateway` listens (port)")
    workers: int = _var(
        1,
        "GATEWAY_WORKERS",
        "processes `python -m gateway` runs on that port (uvicorn workers), each a full gateway instance with its "
        "own store pool, publisher and relay (Python runs one core per process). Per-tenant quotas hold per process",
        ge=1,
    )
    publish_timeout: float = _var(
        10.0, "GATEWAY_PUBLISH_TIMEOUT", "seconds to wait for RabbitMQ's confirm before answering 503"
    )
    ws_auth_timeout: float = _var(5.0, "GATEWAY_WS_AUTH_TIMEOUT", "seconds for the first `auth` frame")
    ws_max_frame_bytes: int = _var(65536, "GATEWAY_WS_MAX_FRAME_BYTES", "largest client frame (bigger: close 1009)")
    max_body_bytes: int = _var(1_048_576, "GATEWAY_MAX_BODY_BYTES", "largest HTTP body (bigger: 413)")
    # Bounds on what a peer can make the gateway hold (README "Hostile peers"); 0 turns one off.
    ws_send_timeout: float = _var(
        10.0, "GATEWAY_WS_SEND_TIMEOUT", "seconds for one frame to reach the kernel (close 4008); 0: no bound", ge=0
    )
    ws_send_queue_bytes: int = _var(
        1_048_576, "GATEWAY_WS_SEND_QUEUE_BYTES", "bytes queued for one socket (close 4008); 0: no bound", ge=0
    )
    # The kernel's send buffer per WebSocket (SO_SNDBUF): autotuned, it grows to
    # net.ipv4.tcp_wmem's max (4 MiB here) for a peer that stops reading.
    ws_kernel_send_buffer_bytes: int = _var(
        131_072,
        "GATEWAY_WS_KERNEL_SEND_BUFFER_BYTES",
        "the kernel's send buffer of one WebSocket (`SO_SNDBUF`); 0: the kernel autotunes it",
        ge=0,
    )
    ws_frames_per_second: float = _var(
        200.0, "GATEWAY_WS_FRAMES_PER_SECOND", "frames per second per socket (`rate_limited`); 0: no bound", ge=0
    )
    ws_resume_ids_per_second: float = _var(
        2000.0, "GATEWAY_WS_RESUME_IDS_PER_SECOND", "resumed task ids per second per socket (paced); 0: no bound", ge=0
    )
    max_sockets_per_tenant: int = _var(
        5000,
        "GATEWAY_MAX_SOCKETS_PER_TENANT",
        "sockets per tenant per gateway instance (close 4029); 0: no bound",
        ge=0,
    )
    max_watches_per_socket: int = _var(
        10_000, "GATEWAY_MAX_WATCHES_PER_SOCKET", "tasks watched per socket (`quota_exceeded`); 0: no bound", ge=0
    )
    max_watches_per_tenant: int = _var(
        100_000,
        "GATEWAY_MAX_WATCHES_PER_TENANT",
        "tasks watched per tenant per instance (`quota_exceeded`); 0: no bound",
        ge=0,
    )
    auth_failures_per_minute: int = _var(
        20,
        "GATEWAY_AUTH_FAILURES_PER_MINUTE",
        "failed authentications per peer address per minute (429 / close 4029); 0: no throttle",
        ge=0,
    )
    max_header_bytes: int = _var(
        32_768, "GATEWAY_MAX_HEADER_BYTES", "request head size (431 `headers_too_large`); 0: no bound", ge=0
    )
    header_timeout: float = _var(
        10.0, "GATEWAY_HEADER_TIMEOUT", "seconds to send a request head (408 `request_timeout`); 0: no bound", ge=0
    )
    keepalive_timeout: int = _var(
        5, "GATEWAY_KEEPALIVE_TIMEOUT", "seconds an idle kept-alive HTTP connection stays open; must be > 0", gt=0
    )
    body_timeout: float = _var(
        30.0, "GATEWAY_BODY_TIMEOUT", "seconds to send a request body (408 `request_timeout`); 0: no bound", ge=0
    )
    idempotency_window_days: float = _var(7.0, "IDEMPOTENCY_WINDOW_DAYS", "how long a key is remembered")
    history_retention_days: float = _var(
        30.0,
        "HISTORY_RETENTION_DAYS",
        "after this, a final task's events and payload are removed (its state stays)",
    )
    odoo_url: str = _var("http://127.0.0.1:8069", "ODOO_URL", "Odoo (`https://` for TLS)")
    # Which Odoo API the workers speak (README "Odoo APIs"): "jsonrpc" (odoorpc, Odoo 14-21),
    # "json2" (Odoo 19+, API key), "auto" (asks the server's version once, without a login).
    odoo_api: Literal["jsonrpc", "json2", "auto"] = _var(
        "jsonrpc",
        "ODOO_API",
        "which Odoo API the workers speak: `jsonrpc` (odoorpc, Odoo 14–21), `json2` (Odoo 19+, needs "
        "`ODOO_API_KEY`; refused at start without one), `auto` (asks `/web/version` once per process: JSON-2 from "
        'saas~18.4 when a key is set, else JSON-RPC). See "Odoo APIs"',
    )
    odoo_db: str = _var(
        "odoo", "ODOO_DB", "the database: the login's on JSON-RPC, the `X-Odoo-Database` header on JSON-2"
    )
    odoo_user: str = _var("admin", "ODOO_USER", "JSON-RPC login")
    odoo_password: SecretStr = _var(
        SecretStr(""), "ODOO_PASSWORD", "JSON-RPC password; an API key works as the password. A secret"
    )
    # The worker user's API key: the bearer token on JSON-2; on JSON-RPC it stands in for
    # ODOO_PASSWORD when that is empty (Odoo 14+ accepts a key as the password).
    odoo_api_key: SecretStr = _var(
        SecretStr(""),
        "ODOO_API_KEY",
        "the worker user's API key: the bearer token on JSON-2; on JSON-RPC used as the password when "
        "`ODOO_PASSWORD` is empty. A secret",
    )
    odoo_version: str = _var(
        "17.0",
        "ODOO_VERSION",
        "passed to odoorpc (saves a round trip; Odoo 14–21); with `ODOO_API=auto` the version the server "
        "reports is used",
    )
    odoo_timeout: float = _var(
        120.0,
        "ODOO_TIMEOUT",
        "seconds per socket operation of an Odoo call (JSON-2: read and write timeout; connecting gives up "
        "after at most 10 s)",
    )
    max_attempts: int = _var(8, "TASK_MAX_ATTEMPTS", "attempts before a task fails for good", ge=1)
    min_backoff: float = _var(1.0, "TASK_MIN_BACKOFF", "shortest retry delay, seconds")
    max_backoff: float = _var(300.0, "TASK_MAX_BACKOFF", "longest retry delay, seconds")
    # How long a worker's claim on a task outlives its last Odoo write. It must exceed
    # the longest an Odoo request can keep running server-side (odoo_timeout and Odoo's
    # limit_time_real, 120 s by default), see README "Exactly once".
    lease_seconds: float | None = _var(
        None,
        "TASK_LEASE_SECONDS",
        'see "Exactly-once" above; must exceed Odoo\'s `limit_time_real`',
        shown="`ODOO_TIMEOUT + 30`",
    )
    # A task queued behind another on the same Odoo record is woken by the worker that
    # finishes the blocker; every worker process also sweeps for queued tasks whose turn
    # has come (a waker that died, a blocker that was never acknowledged) this often ...
    wake_sweep_seconds: float = _var(
        2.0,
        "TASK_WAKE_SWEEP_SECONDS",
        "how often each worker process looks for queued tasks whose turn has come but whose waker died",
        gt=0,
    )
    # ... and wakes again one woken this long ago that is still queued (its message lost).
    wake_rewake_seconds: float = _var(
        30.0,
        "TASK_WAKE_REWAKE_SECONDS",
        "a queued task woken this long ago and still queued (its message lost) is woken again",
        gt=0,
    )
    # How long a worker keeps retrying its first Odoo login while Odoo is unreachable
    # (starting, or its database still being created); a rejected login is never retried.
    odoo_startup_wait: float = _var(
        300.0,
        "ODOO_STARTUP_WAIT",
        "seconds a worker keeps retrying its first Odoo login (with backoff) while Odoo is unreachable or "
        "starting; a *rejected* login is never retried",
        ge=0,
    )
    log_level: str = _var(
        "INFO",
        "LOG_LEVEL",
        "applied the same way under `python -m gateway`, `uvicorn --factory gateway.app:app_from_env` and the "
        "`dramatiq` CLI (logging is configured with `force=True`, replacing what those set up first)",
    )
    log_format: Literal["text", "json"] = _var(
        "text",
        "LOG_FORMAT",
        "`text` (`time level logger message`) or `json` (one object per line: `ts`, `level`, `logger`, "
        "`message`, `pid`, and `task_id` / `conn_id` when the line is about one)",
    )
    # The operators' credential for /v1/admin (failed-task listing and retry); distinct
    # from every tenant token. Empty: the admin API answers 401 to everyone.
    admin_token: SecretStr = _var(
        SecretStr(""),
        "GATEWAY_ADMIN_TOKEN",
        "operators' bearer token for `/v1/admin` (`gwctl failed …`); must differ from every tenant token "
        "(the gateway refuses to start otherwise). A secret",
        shown="*(empty: the admin API refuses everyone)*",
    )
    # On SIGTERM: /readyz answers 503 at once, then this long for load balancers to notice
    # and for submissions under way to finish, before sockets are closed (1001).
    shutdown_drain_seconds: float = _var(
        5.0,
        "GATEWAY_SHUTDOWN_DRAIN_SECONDS",
        "on SIGTERM, how long `/readyz` answers 503 while everything still works, before sockets are closed "
        '("Graceful shutdown")',
        ge=0,
    )
    # prometheus-client's multiprocess directory (GATEWAY_WORKERS > 1); read by the library
    # itself, here only so ``python -m gateway`` can empty it at start.
    metrics_multiproc_dir: str = _var(
        "",
        "PROMETHEUS_MULTIPROC_DIR",
        "read by prometheus-client itself. With `GATEWAY_WORKERS` > 1, set it to a directory of its own: "
        "`python -m gateway` empties it at start and `/metrics` then sums every process. Unset, `/metrics` "
        "shows the one process that answered the scrape",
        shown="*(unset)*",
    )
    # Dramatiq's Prometheus exposition server, one per worker host (0: no metrics).
    worker_metrics_host: str = _var(
        "127.0.0.1",
        "WORKER_METRICS_HOST",
        "where the workers serve Prometheus metrics (one server per `dramatiq` command, for all its processes)",
    )
    worker_metrics_port: int = _var(
        9191, "WORKER_METRICS_PORT", "port of the workers' metrics server; `0` turns worker metrics off", ge=0, le=65535
    )
    worker_metrics_dir: str = _var(
        "",
        "WORKER_METRICS_DIR",
        "prometheus-client's multiprocess files for the workers; files of processes no longer running are "
        "removed when a worker process starts",
        shown="`$TMPDIR/odoo-gateway-worker-metrics-<port>`",
    )
    secrets_dir: str = _var(
        "",
        SECRETS_DIR_VARIABLE,
        "a directory whose files named after these variables hold their values (see above); set, it replaces "
        "the defaults `/run/secrets` (Docker) and `$CREDENTIALS_DIRECTORY` (systemd)",
        shown="*(unset)*",
    )

    @field_validator("tokens", mode="before")
    @classmethod
    def _parse_tokens(cls, value: Any) -> Any:
        if isinstance(value, str):
            pairs = [item.strip() for item in value.split(",") if item.strip()]
            parsed: dict[str, str] = {}
            for pair in pairs:
                token, sep, principal = pair.partition("=")
                if not sep or not token or not principal:
                    raise ValueError("GATEWAY_TOKENS must look like 'token1=tenant1,token2=tenant2'")
                parsed[token] = principal
            return parsed
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(o.strip().rstrip("/") for o in value.split(",") if o.strip())
        return value

    @field_validator("odoo_api", mode="before")
    @classmethod
    def _parse_odoo_api(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _admin_token_is_not_a_tenant_token(self) -> Settings:
        if self.admin_token.get_secret_value() and self.admin_token.get_secret_value() in self.tokens:
            raise ValueError("GATEWAY_ADMIN_TOKEN must differ from every tenant token in GATEWAY_TOKENS")
        return self

    @property
    def effective_lease_seconds(self) -> float:
        return self.lease_seconds if self.lease_seconds is not None else self.odoo_timeout + 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (default ``os.environ``) and the secrets directories.

        Raises ``pydantic.ValidationError`` whose locations are variable names (``GATEWAY_PORT``).
        """
        with _reading_environ(os.environ if environ is None else environ):
            return cls()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _reading.get()
        if environ is None:  # Settings(...): Python values and defaults only
            return (init_settings,)
        # Earlier wins: the environment over a file of the same name. No .env file.
        return (
            init_settings,
            _DocumentedEnvironment(settings_cls, environ),
            _DocumentedSecretFiles(settings_cls, secrets_dir=secrets_dirs(environ)),
        )


@contextmanager
def _reading_environ(environ: Mapping[str, str]) -> Iterator[None]:
    token = _reading.set(environ)
    try:
        yield
    finally:
        _reading.reset(token)


def secrets_dirs(environ: Mapping[str, str]) -> list[Path]:
    """The directories whose files hold settings: ``SETTINGS_SECRETS_DIR`` if set (it must be
    a directory), else those of ``/run/secrets`` (Docker) and ``$CREDENTIALS_DIRECTORY``
    (systemd ``LoadCredential=``) that exist; a later one wins over an earlier one."""
    explicit = environ.get(SECRETS_DIR_VARIABLE, "")
    if explicit:
        path = Path(explicit)
        if not path.is_dir():
            raise ValueError(f"{SECRETS_DIR_VARIABLE}={explicit!r} is not a directory")
        return [path]
    candidates = [DOCKER_SECRETS_DIR]
    if environ.get("CREDENTIALS_DIRECTORY"):
        candidates.append(Path(environ["CREDENTIALS_DIRECTORY"]))
    return [path for path in candidates if path.is_dir()]


class _DocumentedEnvironment(EnvSettingsSource):
    """The environment source, over a given mapping, reading documented variable names only."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name: value for name, value in self._environ.items() if name in _VARIABLES and value != ""}


class _DocumentedSecretFiles(SecretsSettingsSource):
    """Files named after a documented variable (never after a Python field name)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        value, key, is_complex = super().get_field_value(field, field_name)
        if key not in _VARIABLES or value == "":
            return None, key, is_complex
        return value, key, is_complex


def _variable(field: FieldInfo) -> str:
    assert isinstance(field.validation_alias, str)
    return field.validation_alias


_VARIABLES = frozenset(_variable(field) for field in Settings.model_fields.values())


def _shown_default(field: FieldInfo) -> str:
    extra = field.json_schema_extra
    if isinstance(extra, dict) and isinstance(extra.get("readme_default"), str):
        return str(extra["readme_default"])
    value = field.get_default(call_default_factory=True)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if value in ("", (), {}, None):
        return "*(empty)*"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"`{value}`"


def markdown_table() -> str:
    """The README "Configuration" table: one row per variable, in field order."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        meaning = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{_variable(field)}` | {_shown_default(field)} | {meaning} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m shared.config", description=__doc__.splitlines()[0])
    parser.add_argument("--markdown", action="store_true", help="print the README Configuration table")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(), end="")
        return
    try:
        print(repr(Settings.from_env()))
    except ValidationError as exc:
        raise SystemExit(str(exc)) from None


if __name__ == "__main__":
    main()
