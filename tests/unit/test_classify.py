"""Classification of Odoo failures: transient, ambiguous, permanent."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
from email.message import Message

import httpx
import pytest
from odoorpc.error import RPCError

from shared.errors import PermanentTaskError
from workers.classify import FailureClass, OdooLoginRejected, classify
from workers.json2_wire import Json2Error


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


# -- JSON-2: the same classes as JSON-RPC ---------------------------------------------------


def json2(status: int, name: str, message: str = "boom") -> Json2Error:
    return Json2Error(status, name, message, "http://odoo/json/2/sale.order/create")


# (Odoo error name, the HTTP status Odoo 19's Json2Dispatcher gives it): odoo/exceptions.py
# http_status (UserError 422, AccessError/AccessDenied 403, MissingError 404, LockError 409),
# werkzeug errors their own code, anything else 500.
ODOO_ERRORS = [
    ("psycopg2.errors.SerializationFailure", 500),
    ("psycopg2.errors.LockNotAvailable", 500),
    ("odoo.exceptions.ConcurrencyError", 500),
    ("odoo.exceptions.LockError", 409),
    ("odoo.exceptions.UserError", 422),
    ("odoo.exceptions.ValidationError", 422),
    ("odoo.exceptions.AccessError", 403),
    ("odoo.exceptions.AccessDenied", 403),
    ("odoo.exceptions.MissingError", 404),
    ("builtins.TypeError", 500),
    ("werkzeug.exceptions.NotFound", 404),
]


@pytest.mark.parametrize(("name", "status"), ODOO_ERRORS)
def test_an_odoo_error_is_classified_the_same_on_both_apis(name: str, status: int) -> None:
    over_jsonrpc = classify(rpc(name, "why"))
    over_json2 = classify(json2(status, name, "why"))
    assert (over_json2.failure, over_json2.code) == (over_jsonrpc.failure, over_jsonrpc.code)
    if over_json2.failure is FailureClass.PERMANENT:
        assert "why" in over_json2.message or "404" in over_json2.message


@pytest.mark.parametrize(
    ("exc", "expected", "code"),
    [
        (
            json2(401, "werkzeug.exceptions.Unauthorized", "Invalid apikey"),
            FailureClass.PERMANENT,
            "odoo_api_key_rejected",
        ),
        (json2(422, "werkzeug.exceptions.UnprocessableEntity"), FailureClass.PERMANENT, "odoo_bad_arguments"),
        (json2(400, "werkzeug.exceptions.BadRequest"), FailureClass.PERMANENT, "odoo_bad_request"),
        (json2(503, "werkzeug.exceptions.ServiceUnavailable"), FailureClass.TRANSIENT, "odoo_unavailable"),
        # No Odoo error object: a proxy's page, decided by the status as on JSON-RPC.
        (json2(502, "", "<html>bad gateway</html>"), FailureClass.AMBIGUOUS, "odoo_gateway_error"),
        (json2(504, ""), FailureClass.AMBIGUOUS, "odoo_gateway_error"),
        (json2(500, "", "internal server error"), FailureClass.AMBIGUOUS, "odoo_gateway_error"),
        (json2(503, ""), FailureClass.TRANSIENT, "odoo_unavailable"),
        (json2(429, ""), FailureClass.TRANSIENT, "odoo_unavailable"),
        (json2(404, "", "<html>404</html>"), FailureClass.PERMANENT, "odoo_not_found"),
        (json2(405, "werkzeug.exceptions.MethodNotAllowed"), FailureClass.PERMANENT, "odoo_not_found"),
        (json2(403, ""), FailureClass.PERMANENT, "odoo_http_error"),
        (json2(401, ""), FailureClass.PERMANENT, "odoo_api_key_rejected"),
        (httpx.ConnectError("refused"), FailureClass.TRANSIENT, "odoo_unreachable"),
        (httpx.ConnectTimeout("slow"), FailureClass.TRANSIENT, "odoo_unreachable"),
        (httpx.PoolTimeout("busy"), FailureClass.TRANSIENT, "odoo_unreachable"),
        (httpx.ReadTimeout("slow"), FailureClass.AMBIGUOUS, "odoo_connection_lost"),
        (httpx.WriteTimeout("slow"), FailureClass.AMBIGUOUS, "odoo_connection_lost"),
        (httpx.ReadError("reset"), FailureClass.AMBIGUOUS, "odoo_connection_lost"),
        (httpx.RemoteProtocolError("closed without a response"), FailureClass.AMBIGUOUS, "odoo_connection_lost"),
        (TypeError("positional arguments"), FailureClass.PERMANENT, "worker_error"),
        (
            OdooLoginRejected("key refused", code="odoo_api_key_rejected"),
            FailureClass.PERMANENT,
            "odoo_api_key_rejected",
        ),
    ],
)
def test_json2_and_httpx_classification(exc: BaseException, expected: FailureClass, code: str) -> None:
    got = classify(exc)
    assert (got.failure, got.code) == (expected, code)


def test_a_json2_404_without_odoo_error_says_json2_may_be_missing() -> None:
    assert "JSON-2" in classify(json2(404, "", "<html>404</html>")).message
