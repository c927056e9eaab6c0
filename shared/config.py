"""Settings, read once from the environment into one typed object.

Every variable is documented in the README ("Configuration"). There is no default
credential: ``GATEWAY_TOKENS`` is empty unless set (``make run`` sets ``dev-token``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["Settings"]

_ENV = {
    # field name -> environment variable
    "amqp_url": "AMQP_URL",
    "database_url": "DATABASE_URL",
    "tokens": "GATEWAY_TOKENS",
    "allowed_origins": "GATEWAY_ALLOWED_ORIGINS",
    "host": "GATEWAY_HOST",
    "port": "GATEWAY_PORT",
    "publish_timeout": "GATEWAY_PUBLISH_TIMEOUT",
    "ws_auth_timeout": "GATEWAY_WS_AUTH_TIMEOUT",
    "ws_max_frame_bytes": "GATEWAY_WS_MAX_FRAME_BYTES",
    "ws_send_queue": "GATEWAY_WS_SEND_QUEUE",
    "max_body_bytes": "GATEWAY_MAX_BODY_BYTES",
    "idempotency_window_days": "IDEMPOTENCY_WINDOW_DAYS",
    "history_retention_days": "HISTORY_RETENTION_DAYS",
    "odoo_url": "ODOO_URL",
    "odoo_db": "ODOO_DB",
    "odoo_user": "ODOO_USER",
    "odoo_password": "ODOO_PASSWORD",
    "odoo_version": "ODOO_VERSION",
    "odoo_timeout": "ODOO_TIMEOUT",
    "max_attempts": "TASK_MAX_ATTEMPTS",
    "min_backoff": "TASK_MIN_BACKOFF",
    "max_backoff": "TASK_MAX_BACKOFF",
    "lease_seconds": "TASK_LEASE_SECONDS",
    "wake_sweep_seconds": "TASK_WAKE_SWEEP_SECONDS",
    "wake_rewake_seconds": "TASK_WAKE_REWAKE_SECONDS",
    "log_level": "LOG_LEVEL",
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
    publish_timeout: float = 10.0
    ws_auth_timeout: float = 5.0
    ws_max_frame_bytes: int = 65536
    ws_send_queue: int = 1024
    max_body_bytes: int = 1_048_576
    idempotency_window_days: float = 7.0
    history_retention_days: float = 30.0
    odoo_url: str = "http://127.0.0.1:8069"
    odoo_db: str = "odoo"
    odoo_user: str = "admin"
    odoo_password: SecretStr = SecretStr("")
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

    @property
    def effective_lease_seconds(self) -> float:
        return self.lease_seconds if self.lease_seconds is not None else self.odoo_timeout + 30.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        values = {field: env[var] for field, var in _ENV.items() if env.get(var, "") != ""}
        return cls.model_validate(values)
