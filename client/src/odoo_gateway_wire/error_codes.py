"""The codes of the gateway's error answers (HTTP bodies and ``error`` frames), and which
of them mean "send the very same submission again later".

A retryable error means the gateway could not record or publish the submission: it is
neither accepted nor rejected, so a client keeps it and resends it with the same
idempotency key (after ``retry_after`` seconds when the answer has one). Every other
code is final for that submission: resending it unchanged gets the same answer.

Codes inside a task's ``error`` (``unknown_product``, ``queued``, ``odoo_unreachable``, ...)
are another, open vocabulary: they say why a task failed or waits, not how to send it.
"""

from __future__ import annotations

import enum

__all__ = ["RETRYABLE_ERROR_CODES", "ErrorCode", "is_retryable"]


class ErrorCode(enum.StrEnum):
    INTERNAL_ERROR = "internal_error"
    BAD_REQUEST = "bad_request"
    UNAUTHENTICATED = "unauthenticated"
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    UNKNOWN_TYPE = "unknown_type"
    VALIDATION_FAILED = "validation_failed"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_TIMEOUT = "request_timeout"
    TASK_NOT_FAILED = "task_not_failed"
    QUOTA_EXCEEDED = "quota_exceeded"
    RATE_LIMITED = "rate_limited"
    UNAVAILABLE = "unavailable"
    BROKER_UNAVAILABLE = "broker_unavailable"
    STORE_UNAVAILABLE = "store_unavailable"


RETRYABLE_ERROR_CODES = frozenset(
    {
        ErrorCode.UNAVAILABLE,
        ErrorCode.BROKER_UNAVAILABLE,
        ErrorCode.STORE_UNAVAILABLE,
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.QUOTA_EXCEEDED,
        ErrorCode.RATE_LIMITED,
    }
)


def is_retryable(code: str, retry_after: object = None) -> bool:
    """Whether a submission refused with ``code`` is to be sent again later, unchanged.

    The gateway adds ``retry_after`` only to "try again" errors, so its presence also
    counts, as does the ``_unavailable`` suffix: a newer gateway may add a code of that
    family that this version does not know yet.
    """
    return code in RETRYABLE_ERROR_CODES or code.endswith("_unavailable") or retry_after is not None
