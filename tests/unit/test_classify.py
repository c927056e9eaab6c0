"""Classification of Odoo failures: transient, ambiguous, permanent."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
from email.message import Message

import pytest
from odoorpc.error import RPCError

from shared.errors import PermanentTaskError
from workers.classify import FailureClass, OdooLoginRejected, classify


def rpc(name: str, message: str = "boom") -> RPCError:
    return RPCError(message, {"code": 200, "message": "Odoo Server Error", "data": {"name": name, "message": message}})


def http_error(code: int) -> urllib.error.HTTPError:
    return urllib.error.HTTPError("http://odoo/jsonrpc", code, "x", Message(), None)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (rpc("psycopg2.errors.SerializationFailure"), FailureClass.TRANSIENT),
        (rpc("odoo.exceptions.LockError"), FailureClass.TRANSIENT),
        (rpc("psycopg2.OperationalError", "too many connections"), FailureClass.TRANSIENT),
        (rpc("psycopg2.OperationalError", 'database "x" does not exist'), FailureClass.PERMANENT),
        (rpc("odoo.exceptions.ValidationError"), FailureClass.PERMANENT),
        (rpc("odoo.exceptions.UserError"), FailureClass.PERMANENT),
        (rpc("odoo.exceptions.AccessError"), FailureClass.PERMANENT),
        (rpc("odoo.exceptions.AccessDenied"), FailureClass.PERMANENT),
        (rpc("odoo.exceptions.MissingError"), FailureClass.PERMANENT),
        (rpc("builtins.AttributeError"), FailureClass.PERMANENT),
        (http_error(503), FailureClass.TRANSIENT),
        (http_error(429), FailureClass.TRANSIENT),
        (http_error(502), FailureClass.AMBIGUOUS),
        (http_error(504), FailureClass.AMBIGUOUS),
        (http_error(500), FailureClass.AMBIGUOUS),
        (http_error(404), FailureClass.PERMANENT),
        (http_error(401), FailureClass.PERMANENT),
        (urllib.error.URLError(ConnectionRefusedError(111, "refused")), FailureClass.TRANSIENT),
        (urllib.error.URLError(socket.gaierror(-2, "no such host")), FailureClass.TRANSIENT),
        (urllib.error.URLError(ConnectionResetError(104, "reset")), FailureClass.AMBIGUOUS),
        (TimeoutError("timed out"), FailureClass.AMBIGUOUS),
        (ConnectionResetError(104, "reset"), FailureClass.AMBIGUOUS),
        (http.client.RemoteDisconnected("closed"), FailureClass.AMBIGUOUS),
        (BrokenPipeError(), FailureClass.AMBIGUOUS),
        (json.JSONDecodeError("x", "<html>", 0), FailureClass.AMBIGUOUS),
        (ConnectionRefusedError(), FailureClass.TRANSIENT),
        (KeyError("data"), FailureClass.PERMANENT),
        (PermanentTaskError("no such customer"), FailureClass.PERMANENT),
    ],
)
def test_classification(exc: BaseException, expected: FailureClass) -> None:
    assert classify(exc).failure is expected


def test_messages_are_for_people_and_codes_are_stable() -> None:
    c = classify(rpc("odoo.exceptions.ValidationError", "Missing required fields"))
    assert c.code == "odoo_validation_error"
    assert "Missing required fields" in c.message
    login = classify(OdooLoginRejected("Odoo rejected the worker's login"))
    assert (login.failure, login.code) == (FailureClass.PERMANENT, "odoo_login_rejected")
