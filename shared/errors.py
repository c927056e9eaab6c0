"""One error hierarchy for the whole project, grouped by what a caller does about it.

::

    GatewayError                      every error this project raises on purpose
    ├── ClientError                   the request is wrong; retrying it unchanged will not help
    │   ├── AuthenticationFailed      401 / close 4001: missing, unknown or expired token
    │   ├── NotFound                  404: unknown task, or a task of another principal
    │   ├── InvalidRequest            400: malformed JSON, missing Idempotency-Key, bad frame
    │   │   └── UnknownFrameType      a WebSocket frame whose ``type`` is not in the protocol
    │   ├── ValidationFailed          422: the body or payload breaks the schema (field errors)
    │   ├── IdempotencyKeyReused      422: same key, different payload
    │   ├── PayloadTooLarge           413 / close 1009
    │   ├── RequestTimeout            408: the body did not arrive in time
    │   ├── TaskNotRetryable          409: an operator's retry of a task that is not failed
    │   └── QuotaExceeded             429 + Retry-After: a per-tenant or per-socket bound was hit
    │       └── RateLimited           429 + Retry-After: too many requests, frames or failed logins
    ├── Unavailable                   503 + Retry-After: a dependency is down; retry the same request
    │   ├── BrokerUnavailable         RabbitMQ did not confirm the publish
    │   └── StoreUnavailable          the task store could not be reached
    ├── ConfigurationError            the settings can't run this component (refused at start)
    └── TaskError                     raised inside workers while applying a task to Odoo
        ├── PermanentTaskError        fail the task now, with a reason a person can act on
        ├── RetryableTaskError        transient: retry with backoff and jitter
        └── AmbiguousTaskError        the effect may or may not exist: look it up, then retry

Codes are the wire protocol's (``odoo_gateway_wire.error_codes``, which also says which are
retryable); WebSocket close codes are ``odoo_gateway_wire.close_codes``.
"""

from __future__ import annotations

from typing import Any

from odoo_gateway_wire.error_codes import ErrorCode

__all__ = [
    "AmbiguousTaskError",
    "AuthenticationFailed",
    "BrokerUnavailable",
    "ClientError",
    "ConfigurationError",
    "GatewayError",
    "IdempotencyKeyReused",
    "InvalidRequest",
    "NotFound",
    "PayloadTooLarge",
    "PermanentTaskError",
    "QuotaExceeded",
    "RateLimited",
    "RequestTimeout",
    "RetryableTaskError",
    "StoreUnavailable",
    "TaskError",
    "TaskNotRetryable",
    "Unavailable",
    "UnknownFrameType",
    "ValidationFailed",
]


class GatewayError(Exception):
    """Base class. ``code`` is a stable machine-readable string, ``status`` the HTTP status."""

    code: str = ErrorCode.INTERNAL_ERROR
    status = 500

    def __init__(self, message: str, *, details: Any = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:  # a more precise code than the class's, e.g. "unknown_product"
            self.code = code
        # The client's ``ref`` of the frame that caused this error, echoed in the reply.
        self.ref: str | int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ClientError(GatewayError):
    code: str = ErrorCode.BAD_REQUEST
    status = 400


class AuthenticationFailed(ClientError):
    code: str = ErrorCode.UNAUTHENTICATED
    status = 401


class NotFound(ClientError):
    code: str = ErrorCode.NOT_FOUND
    status = 404


class InvalidRequest(ClientError):
    code: str = ErrorCode.INVALID_REQUEST
    status = 400


class UnknownFrameType(InvalidRequest):
    code: str = ErrorCode.UNKNOWN_TYPE


class ValidationFailed(ClientError):
    code: str = ErrorCode.VALIDATION_FAILED
    status = 422


class IdempotencyKeyReused(ClientError):
    code: str = ErrorCode.IDEMPOTENCY_KEY_REUSED
    status = 422


class PayloadTooLarge(ClientError):
    code: str = ErrorCode.PAYLOAD_TOO_LARGE
    status = 413


class RequestTimeout(ClientError):
    code: str = ErrorCode.REQUEST_TIMEOUT
    status = 408


class TaskNotRetryable(ClientError):
    code: str = ErrorCode.TASK_NOT_FAILED
    status = 409


class QuotaExceeded(ClientError):
    """A bound from README "Limits" was hit; the same request may succeed after ``retry_after_seconds``."""

    code: str = ErrorCode.QUOTA_EXCEEDED
    status = 429

    def __init__(self, message: str, *, retry_after_seconds: int = 1, code: str | None = None) -> None:
        super().__init__(message, code=code)
        self.retry_after_seconds = max(1, retry_after_seconds)


class RateLimited(QuotaExceeded):
    code: str = ErrorCode.RATE_LIMITED


class ConfigurationError(GatewayError):
    code = "configuration_error"


class Unavailable(GatewayError):
    code: str = ErrorCode.UNAVAILABLE
    status = 503
    retry_after_seconds = 2


class BrokerUnavailable(Unavailable):
    code: str = ErrorCode.BROKER_UNAVAILABLE


class StoreUnavailable(Unavailable):
    """``cause`` (the driver's words) is for logs only: ``str(exc)`` includes it, the
    answer a client gets (``message``) never does."""

    code: str = ErrorCode.STORE_UNAVAILABLE
    CLIENT_MESSAGE = "The task store is not reachable right now. Retry shortly (a submission with the same key)."

    def __init__(self, cause: str) -> None:
        super().__init__(self.CLIENT_MESSAGE)
        self.cause = cause

    def __str__(self) -> str:
        return f"{self.CLIENT_MESSAGE} Cause: {self.cause}"


class TaskError(GatewayError):
    """Raised while applying a task to Odoo. ``code`` travels in the task's ``error``."""

    code = "task_error"


class PermanentTaskError(TaskError):
    code = "permanent"


class RetryableTaskError(TaskError):
    code = "transient"


class AmbiguousTaskError(TaskError):
    code = "ambiguous"
