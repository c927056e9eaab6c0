"""Errors the client raises, grouped by what the caller can do about them.

::

    GatewayClientError          every error this package raises on purpose
    ├── SubmissionRejected      the gateway refused this submission; resending it will not help
    ├── TaskNotFound            the gateway does not know the task (or it belongs to someone else)
    ├── AuthenticationError     the token was refused; the client stopped (no reconnect loop)
    ├── ConnectionRefused       the gateway closed for good for another reason (e.g. frame too big)
    └── ClientClosed            the client was closed while something waited on it
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "ClientClosed",
    "ConnectionRefused",
    "GatewayClientError",
    "SubmissionRejected",
    "TaskNotFound",
]


class GatewayClientError(Exception):
    """Base class of the client's errors."""


class SubmissionRejected(GatewayClientError):
    """The gateway answered a submission with a client error (validation, key reuse, ...)."""

    def __init__(self, code: str, message: str, details: Any = None, *, key: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.key = key


class TaskNotFound(GatewayClientError):
    def __init__(self, task_id: str) -> None:
        super().__init__(f"the gateway does not know task {task_id} (or it belongs to another principal)")
        self.task_id = task_id


class AuthenticationError(GatewayClientError):
    """The gateway refused the token (close 4001/4002 or HTTP 401). Not retried: the same
    token would be refused again, and hammering a gateway with a bad token helps no one."""


class ConnectionRefused(GatewayClientError):
    """The gateway closed the socket with a code that says "do not reconnect unchanged"."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"gateway closed the connection ({code}): {reason}")
        self.code = code
        self.reason = reason


class ClientClosed(GatewayClientError):
    def __init__(self) -> None:
        super().__init__("the client was closed")
