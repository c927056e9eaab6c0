"""Settings, read once from the environment into one typed object.

Every variable is documented in the README ("Configuration"). There is no default
credential: ``GATEWAY_TOKENS`` is empty unless set (``make run`` sets ``dev-token``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

__all__ = ["Settings"]

_ENV = {
    # field name -> environment variable
    "amqp_url": "AMQP_URL",
    "database_url": "DATABASE_URL",
    "tokens": "GATEWAY_TOKENS",
    "allowed_origins": "GATEWAY_ALLOWED_ORIGINS",
    "host": "GATEWAY_HOST",
    "port": "GATEWAY_PORT",
    "workers": "GATEWAY_WORKERS",
    "publish_timeout": "GATEWAY_PUBLISH_TIMEOUT",
    "ws_auth_timeout": "GATEWAY_WS_AUTH_TIMEOUT",
    "ws_max_frame_bytes": "GATEWAY_WS_MAX_FRAME_BYTES",
    "ws_send_queue_bytes": "GATEWAY_WS_SEND_QUEUE_BYTES",
    "ws_send_timeout": "GATEWAY_WS_SEND_TIMEOUT",
    "ws_kernel_send_buffer_bytes": "GATEWAY_WS_KERNEL_SEND_BUFFER_BYTES",
    "ws_frames_per_second": "GATEWAY_WS_FRAMES_PER_SECOND",
    "ws_resume_ids_per_second": "GATEWAY_WS_RESUME_IDS_PER_SECOND",
    "max_watches_per_socket": "GATEWAY_MAX_WATCHES_PER_SOCKET",
    "max_watches_per_tenant": "GATEWAY_MAX_WATCHES_PER_TENANT",
    "max_sockets_per_tenant": "GATEWAY_MAX_SOCKETS_PER_TENANT",
    "auth_failures_per_minute": "GATEWAY_AUTH_FAILURES_PER_MINUTE",
    "max_header_bytes": "GATEWAY_MAX_HEADER_BYTES",
    "header_timeout": "GATEWAY_HEADER_TIMEOUT",
    "keepalive_timeout": "GATEWAY_KEEPALIVE_TIMEOUT",
    "body_timeout": "GATEWAY_BODY_TIMEOUT",
    "max_body_bytes": "GATEWAY_MAX_BODY_BYTES",
    "demo_token": "GATEWAY_DEMO_TOKEN",
    "event_signing_key": "EVENT_SIGNING_KEY",
    "idempotency_window_days": "IDEMPOTENCY_WINDOW_DAYS",
    "history_retention_days": "HISTORY_RETENTION_DAYS",
    "odoo_url": "ODOO_URL",
    "odoo_db": "ODOO_DB",
    "odoo_user": "ODOO_USER",
    "odoo_password": "ODOO_PASSWORD",
    "odoo_api": "ODOO_API",
    "odoo_api_key": "ODOO_API_KEY",
    "odoo_version": "ODOO_VERSION",
    "odoo_timeout": "ODOO_TIMEOUT",
    "max_attempts": "TASK_MAX_ATTEMPTS",
    "min_backoff": "TASK_MIN_BACKOFF",
    "max_backoff": "TASK_MAX_BACKOFF",
    "lease_seconds": "TASK_LEASE_SECONDS",
    "wake_sweep_seconds": "TASK_WAKE_SWEEP_SECONDS",
    "wake_rewake_seconds": "TASK_WAKE_REWAKE_SECONDS",
    "log_level": "LOG_LEVEL",
    "log_format": "LOG_FORMAT",
    "admin_token": "GATEWAY_ADMIN_TOKEN",
    "shutdown_drain_seconds": "GATEWAY_SHUTDOWN_DRAIN_SECONDS",
    "metrics_multiproc_dir": "PROMETHEUS_MULTIPROC_DIR",
    "worker_metrics_host": "WORKER_METRICS_HOST",
    "worker_metrics_port": "WORKER_METRICS_PORT",
    "worker_metrics_dir": "WORKER_METRICS_DIR",
    "odoo_startup_wait": "ODOO_STARTUP_WAIT",
}


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    amqp_url: str = "amqp://guest:guest@127.0.0.1:5672/%2F"
    database_url: str = "sqlite:///var/gateway.sqlite3"
    # token -> principal (tenant). Parsed from "token1=tenant1,token2=tenant2".
    tokens: dict[str, str] = Field(default_factory=dict, repr=False)
    allowed_origins: tuple[str, ...] = ()
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = Field(default=1, ge=1)
    publish_timeout: float = 10.0
    ws_auth_timeout: float = 5.0
    ws_max_frame_bytes: int = 65536
    # Bounds on what a peer can make the gateway hold (README "Limits"); 0 turns one off.
    ws_send_queue_bytes: int = Field(default=1_048_576, ge=0)
    ws_send_timeout: float = Field(default=10.0, ge=0)
    # The kernel's send buffer per WebSocket (SO_SNDBUF): autotuned, it grows to
    # net.ipv4.tcp_wmem's max (4 MiB here) for a peer that stops reading.
    ws_kernel_send_buffer_bytes: int = Field(default=131_072, ge=0)
    ws_frames_per_second: float = Field(default=200.0, ge=0)
    ws_resume_ids_per_second: float = Field(default=2000.0, ge=0)
    max_watches_per_socket: int = Field(default=10_000, ge=0)
    max_watches_per_tenant: int = Field(default=100_000, ge=0)
    max_sockets_per_tenant: int = Field(default=5000, ge=0)
    auth_failures_per_minute: int = Field(default=20, ge=0)
    max_header_bytes: int = Field(default=32_768, ge=0)
    header_timeout: float = Field(default=10.0, ge=0)
    keepalive_timeout: int = Field(default=5, gt=0)
    body_timeout: float = Field(default=30.0, ge=0)
    max_body_bytes: int = 1_048_576
    # The token the page at ``/`` comes pre-filled with: only ``make run`` sets one.
    demo_token: SecretStr = SecretStr("")
    # HMAC key workers sign task events with and gateways verify (shared/signing.py).
    event_signing_key: SecretStr = SecretStr("")
    idempotency_window_days: float = 7.0
    history_retention_days: float = 30.0
    odoo_url: str = "http://127.0.0.1:8069"
    odoo_db: str = "odoo"
    odoo_user: str = "admin"
    odoo_password: SecretStr = SecretStr("")
    # Which Odoo API the workers speak (README "Odoo APIs"): "jsonrpc" (odoorpc, Odoo 14-21),
    # "json2" (Odoo 19+, API key), "auto" (asks the server's version once, without a login).
    odoo_api: Literal["jsonrpc", "json2", "auto"] = "jsonrpc"
    # The worker user's API key: the bearer token on JSON-2; on JSON-RPC it stands in for
    # ODOO_PASSWORD when that is empty (Odoo 14+ accepts a key as the password).
    odoo_api_key: SecretStr = SecretStr("")
    odoo_version: str = "17.0"
    odoo_timeout: float = 120.0
    max_attempts: int = Field(default=8, ge=1)
    min_backoff: float = 1.0
    max_backoff: float = 300.0
    # How long a worker's claim on a task outlives its last Odoo write. It must exceed
    # the longest an Odoo request can keep running server-side (odoo_timeout and Odoo's
    # limit_time_real, 120 s by default), see README "Exactly once".
    lease_seconds: float | None = None
    # A task queued behind another on the same Odoo record is woken by the worker that
    # finishes the blocker; every worker process also sweeps for queued tasks whose turn
    # has come (a waker that died, a blocker that was never acknowledged) this often ...
    wake_sweep_seconds: float = Field(default=2.0, gt=0)
    # ... and wakes again one woken this long ago that is still queued (its message lost).
    wake_rewake_seconds: float = Field(default=30.0, gt=0)
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    # The operators' credential for /v1/admin (failed-task listing and retry); distinct
    # from every tenant token. Empty: the admin API answers 401 to everyone.
    admin_token: SecretStr = SecretStr("")
    # On SIGTERM: /readyz answers 503 at once, then this long for load balancers to notice
    # and for submissions under way to finish, before sockets are closed (1001).
    shutdown_drain_seconds: float = Field(default=5.0, ge=0)
    # prometheus-client's multiprocess directory (GATEWAY_WORKERS > 1); read by the library
    # itself, here only so ``python -m gateway`` can empty it at start.
    metrics_multiproc_dir: str = ""
    # Dramatiq's Prometheus exposition server, one per worker host (0: no metrics).
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9191, ge=0, le=65535)
    worker_metrics_dir: str = ""
    # How long a worker keeps retrying its first Odoo login while Odoo is unreachable
    # (starting, or its database still being created); a rejected login is never retried.
    odoo_startup_wait: float = Field(default=300.0, ge=0)

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
        env = os.environ if environ is None else environ
        values = {field: env[var] for field, var in _ENV.items() if env.get(var, "") != ""}
        return cls.model_validate(values)
