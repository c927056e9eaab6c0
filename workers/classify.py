"""Classify a failure of an Odoo call as transient, ambiguous or permanent. No I/O.

- transient: nothing happened in Odoo (refused connection, 503, rolled-back
  serialization failure or lock error): retry with backoff and jitter.
- ambiguous: the request may have committed (timeout after sending, reset, 502/504,
  a reply that is not JSON): look for the task's effect before anything else.
- permanent: Odoo refused the task for a reason retrying cannot change (validation,
  access, missing record, bad credentials): fail now with the reason.

Failed logins are permanent and never retried: Odoo counts failures per remote IP and
locks out everyone behind it ("Too many login failures"). An API key JSON-2 refuses (401)
is permanent too.

Both Odoo adapters land in the same classes: an Odoo error travels by its dotted name
(``data.name`` in a JSON-RPC error, ``name`` in a JSON-2 error body) and is classified by
that name alone; transport failures (urllib under odoorpc, httpx under JSON-2) by whether
the request can have reached Odoo. README "Odoo APIs" has the table.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from shared.errors import AmbiguousTaskError, PermanentTaskError, RetryableTaskError, TaskError
from workers.json2_wire import Json2Error

__all__ = ["Classified", "FailureClass", "OdooLoginRejected", "classify"]


class FailureClass(StrEnum):
    TRANSIENT = "transient"
    AMBIGUOUS = "ambiguous"
    PERMANENT = "permanent"


@dataclass(frozen=True)
class Classified:
    failure: FailureClass
    code: str  # machine code that travels in the task's ``error.code``
    message: str  # for a person


class OdooLoginRejected(PermanentTaskError):
    code = "odoo_login_rejected"


_TRANSIENT_ODOO = {
    "psycopg2.errors.SerializationFailure",
    "psycopg2.errors.LockNotAvailable",
    "psycopg2.errors.DeadlockDetected",
    "psycopg2.extensions.TransactionRollbackError",
    "psycopg2.OperationalError",
    "odoo.exceptions.LockError",
    "odoo.exceptions.ConcurrencyError",
    "werkzeug.exceptions.ServiceUnavailable",
    "werkzeug.exceptions.TooManyRequests",
}
_PERMANENT_CODES = {
    "odoo.exceptions.UserError": "odoo_user_error",
    "odoo.exceptions.ValidationError": "odoo_validation_error",
    "odoo.exceptions.AccessError": "odoo_access_error",
    "odoo.exceptions.AccessDenied": "odoo_access_denied",
    "odoo.exceptions.MissingError": "odoo_missing_record",
    "odoo.exceptions.RedirectWarning": "odoo_user_error",
    "werkzeug.exceptions.NotFound": "odoo_not_found",
    # JSON-2 only: arguments that do not bind to the method, ids on an @api.model method
    "werkzeug.exceptions.UnprocessableEntity": "odoo_bad_arguments",
    "werkzeug.exceptions.BadRequest": "odoo_bad_request",
    "werkzeug.exceptions.Unauthorized": "odoo_api_key_rejected",
    "werkzeug.exceptions.Forbidden": "odoo_access_denied",
    "werkzeug.exceptions.MethodNotAllowed": "odoo_not_found",
    "werkzeug.exceptions.UnsupportedMediaType": "odoo_bad_request",
}
_TRANSIENT_HTTP = {429, 503}
_AMBIGUOUS_HTTP = {500, 502, 504}


def _rpc_error(name: str, message: str) -> Classified:
    short = name.rsplit(".", 1)[-1]
    if name in _TRANSIENT_ODOO and "does not exist" not in message:
        return Classified(FailureClass.TRANSIENT, "odoo_concurrency", f"Odoo was busy ({short}).")
    code = _PERMANENT_CODES.get(name, "odoo_error")
    return Classified(FailureClass.PERMANENT, code, f"Odoo refused the task ({short}): {message}")


def _http_status(status: int, hint: str) -> Classified:
    """An HTTP error status without an Odoo error object (a proxy's page, or no route)."""
    where = f"Odoo answered HTTP {status}"
    if status in _TRANSIENT_HTTP:
        return Classified(FailureClass.TRANSIENT, "odoo_unavailable", f"{where}; will retry.")
    if status in _AMBIGUOUS_HTTP or status >= 500:
        return Classified(FailureClass.AMBIGUOUS, "odoo_gateway_error", f"{where}.")
    if status == 401:
        return Classified(FailureClass.PERMANENT, "odoo_api_key_rejected", f"{where}: the credentials were refused.")
    return Classified(FailureClass.PERMANENT, "odoo_http_error", f"{where}: {hint}")


def _http_error(exc: urllib.error.HTTPError) -> Classified:
    return _http_status(exc.code, "the URL or the Odoo version is wrong (is /jsonrpc enabled?).")


def _json2_error(exc: Json2Error) -> Classified:
    # Odoo's error object: Odoo itself answered, after rolling the request back, so its name
    # decides, exactly as on JSON-RPC (a 500 SerializationFailure is transient, not ambiguous).
    hint = "is ODOO_URL right, and does this Odoo offer JSON-2, i.e. 19.0 or later? (ODOO_API=auto picks for you)"
    if exc.status == 404 and exc.name in ("", "werkzeug.exceptions.NotFound"):
        return Classified(FailureClass.PERMANENT, "odoo_not_found", f"Odoo answered 404 to {exc.where}: {hint}")
    if exc.name and exc.status not in _TRANSIENT_HTTP:
        return _rpc_error(exc.name, exc.message)
    return _http_status(exc.status, f"{exc.message} ({hint})")


def _httpx_error(exc: httpx.TransportError) -> Classified:
    # Nothing was sent when connecting failed or no pooled connection became free in time.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Classified(
            FailureClass.TRANSIENT, "odoo_unreachable", f"Odoo is unreachable ({exc or type(exc).__name__})."
        )
    return Classified(
        FailureClass.AMBIGUOUS,
        "odoo_connection_lost",
        f"The connection to Odoo failed mid-request ({type(exc).__name__}).",
    )


def _url_error(exc: urllib.error.URLError) -> Classified:
    reason: Any = exc.reason
    # Nothing was sent when the connection was refused or the name did not resolve.
    if isinstance(reason, ConnectionRefusedError | socket.gaierror):
        return Classified(FailureClass.TRANSIENT, "odoo_unreachable", f"Odoo is unreachable ({reason}).")
    if isinstance(reason, TimeoutError) and "connect" in str(reason).lower():
        return Classified(FailureClass.TRANSIENT, "odoo_unreachable", "Connecting to Odoo timed out.")
    return Classified(FailureClass.AMBIGUOUS, "odoo_connection_lost", f"Connection to Odoo lost: {reason}.")


def classify(exc: BaseException) -> Classified:
    """Map an exception raised around an Odoo call to a :class:`Classified` failure."""
    # Imported here so this module stays importable (and testable) without odoorpc.
    from odoorpc.error import InternalError, RPCError

    if isinstance(exc, TaskError):
        failure = {
            PermanentTaskError: FailureClass.PERMANENT,
            RetryableTaskError: FailureClass.TRANSIENT,
            AmbiguousTaskError: FailureClass.AMBIGUOUS,
        }
        for cls, klass in failure.items():
            if isinstance(exc, cls):
                return Classified(klass, exc.code, exc.message)
    if isinstance(exc, RPCError):
        info = exc.info if isinstance(exc.info, dict) else {}
        data = info.get("data") or {}
        return _rpc_error(str(data.get("name", "")), str(data.get("message", exc)))
    if isinstance(exc, Json2Error):
        return _json2_error(exc)
    if isinstance(exc, httpx.TransportError):
        return _httpx_error(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return _http_error(exc)
    if isinstance(exc, urllib.error.URLError):
        return _url_error(exc)
    if isinstance(exc, ConnectionRefusedError):
        return Classified(FailureClass.TRANSIENT, "odoo_unreachable", "Odoo refused the connection.")
    if isinstance(exc, TimeoutError | ConnectionError | http.client.HTTPException):
        return Classified(
            FailureClass.AMBIGUOUS,
            "odoo_connection_lost",
            f"The connection to Odoo failed mid-request ({type(exc).__name__}).",
        )
    if isinstance(exc, json.JSONDecodeError):
        return Classified(
            FailureClass.AMBIGUOUS, "odoo_bad_reply", "Odoo (or a proxy) answered something that is not JSON."
        )
    if isinstance(exc, InternalError | KeyError | ValueError):
        return Classified(FailureClass.PERMANENT, "odoo_protocol_error", f"Unexpected reply from Odoo: {exc!r}.")
    return Classified(FailureClass.PERMANENT, "worker_error", f"Unexpected error: {exc!r}.")
