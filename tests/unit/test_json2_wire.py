"""JSON-2 on the wire without I/O: the body of a call, and reading Odoo's answers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from workers.json2_wire import Json2Error, read_reply, request_body


@pytest.mark.parametrize(
    ("args", "kwargs", "body"),
    [
        # A model method: every argument by name, the context beside them.
        (
            [],
            {"domain": [["name", "=", "x"]], "fields": ["id"], "context": {"lang": "fr_FR"}},
            {"domain": [["name", "=", "x"]], "fields": ["id"], "context": {"lang": "fr_FR"}},
        ),
        # A record method: args[0] is the ids, which travel as "ids".
        (
            [[4, 5]],
            {"context": {"inventory_mode": True, "inventory_name": "GW-1"}},
            {"ids": [4, 5], "context": {"inventory_mode": True, "inventory_name": "GW-1"}},
        ),
        ([7], None, {"ids": [7]}),
        # An empty context is not sent (Odoo's default is the user's context).
        ([], {"vals_list": [{"name": "a"}], "context": {}}, {"vals_list": [{"name": "a"}]}),
    ],
)
def test_request_body(args: list[Any], kwargs: dict[str, Any] | None, body: dict[str, Any]) -> None:
    assert request_body("m.x", "meth", args, kwargs) == body


@pytest.mark.parametrize(
    "args",
    [
        [[["name", "=", "x"]]],  # a positional domain
        [[{"name": "a"}]],  # positional values
        [[1, 2], {"name": "a"}],  # ids then positional values (write)
        [True],
    ],
)
def test_positional_arguments_other_than_ids_are_refused(args: list[Any]) -> None:
    with pytest.raises(TypeError, match="named arguments only"):
        request_body("m.x", "meth", args, {})


def test_ids_as_a_keyword_are_refused() -> None:
    with pytest.raises(TypeError, match="args\\[0\\]"):
        request_body("m.x", "meth", [], {"ids": [1]})


def test_the_callers_kwargs_are_not_changed() -> None:
    kwargs = {"fields": ["id"], "context": {"a": 1}}
    request_body("m.x", "meth", [], kwargs)
    assert kwargs == {"fields": ["id"], "context": {"a": 1}}


def test_a_success_is_the_bare_json_value() -> None:
    assert read_reply(200, "[1, 2]", "x") == [1, 2]
    assert read_reply(200, "null", "x") is None
    assert read_reply(200, '{"a": 1}', "x") == {"a": 1}


def test_a_success_that_is_not_json_raises_json_decode_error() -> None:
    with pytest.raises(json.JSONDecodeError):
        read_reply(200, "<html><body>Service Unavailable</body></html>", "x")


def test_odoos_error_object_is_read() -> None:
    body = {
        "name": "odoo.exceptions.ValidationError",
        "message": "Missing required fields",
        "arguments": ["Missing required fields"],
        "context": {},
        "debug": "Traceback ...",
    }
    with pytest.raises(Json2Error) as info:
        read_reply(422, json.dumps(body), "http://odoo/json/2/sale.order/create")
    err = info.value
    assert (err.status, err.name, err.message) == (422, "odoo.exceptions.ValidationError", "Missing required fields")
    assert "sale.order/create" in str(err)


@pytest.mark.parametrize(
    ("status", "text", "message"),
    [
        (500, '"internal server error"', "internal server error"),  # saas~18.4's bare string
        (
            502,
            "<html><body><h1>502   Bad Gateway</h1></body></html>",
            "<html><body><h1>502 Bad Gateway</h1></body></html>",
        ),
        (504, "", "(empty body)"),
        (404, '{"detail": "not odoo"}', '{"detail": "not odoo"}'),
    ],
)
def test_an_error_without_odoos_object_has_no_name(status: int, text: str, message: str) -> None:
    with pytest.raises(Json2Error) as info:
        read_reply(status, text, "x")
    assert (info.value.status, info.value.name, info.value.message) == (status, "", message)


def test_a_jsonrpc_error_answered_with_200_is_an_error_not_a_result() -> None:
    # What Odoo 17/18 answers a JSON POST to /json/2/...: no such route, JSON-RPC's envelope.
    body = {
        "jsonrpc": "2.0",
        "id": None,
        "error": {
            "code": 404,
            "message": "404: Not Found",
            "data": {"name": "werkzeug.exceptions.NotFound", "message": "404 Not Found: ...", "debug": ""},
        },
    }
    with pytest.raises(Json2Error) as info:
        read_reply(200, json.dumps(body), "x")
    assert (info.value.status, info.value.name) == (404, "werkzeug.exceptions.NotFound")
