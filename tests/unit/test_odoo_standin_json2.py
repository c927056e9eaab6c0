"""The stand-in's JSON-2 API, on the raw wire: routes, bearer keys, database header, Odoo's
error object and status codes, one transaction per request, and the same fault injection."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.odoo_standin import FaultRule, OdooStandin

KEY = "standin-key-1"
ERROR_KEYS = {"name", "message", "arguments", "context", "debug"}


@pytest.fixture
def odoo() -> Iterator[OdooStandin]:
    s = OdooStandin(port=0, version="19.0", api_keys=(KEY,)).start()
    try:
        yield s
    finally:
        s.stop()


def post(
    s: OdooStandin, path: str, body: Any = None, key: str | None = KEY, headers: dict[str, str] | None = None
) -> httpx.Response:
    sent = {"X-Odoo-Database": "odoo", **(headers or {})}
    if key is not None:
        sent["Authorization"] = f"bearer {key}"
    return httpx.post(f"{s.url}{path}", json=body if body is not None else {}, headers=sent, timeout=10)


def test_version_without_a_login(odoo: OdooStandin) -> None:
    for path in ("/web/version", "/json/version"):
        response = httpx.get(f"{odoo.url}{path}")
        assert response.status_code == 200
        assert response.json() == {"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}
    assert odoo.login_attempts == 0


def test_before_19_there_is_no_json2_and_no_web_version() -> None:
    with OdooStandin(port=0, version="18.0", api_keys=(KEY,)) as s:
        assert httpx.get(f"{s.url}/web/version").status_code == 404
        response = httpx.post(f"{s.url}/json/2/res.partner/search_read", content=b"{}")
        assert response.status_code == 404 and "text/html" in response.headers["content-type"]


def test_a_call_answers_the_bare_value(odoo: OdooStandin) -> None:
    response = post(
        odoo, "/json/2/res.partner/search_read", {"domain": [["name", "=", "Demo Customer"]], "fields": ["name"]}
    )
    assert response.status_code == 200
    assert response.json() == [{"id": 7, "name": "Demo Customer"}]


def test_create_answers_ids_even_for_one_dict(odoo: OdooStandin) -> None:
    response = post(odoo, "/json/2/res.partner/create", {"vals_list": {"name": "Solo"}})
    assert response.status_code == 200
    [new_id] = response.json()
    assert [p["name"] for p in odoo.records("res.partner") if p["id"] == new_id] == ["Solo"]


@pytest.mark.parametrize(
    ("key", "headers", "message"),
    [
        (None, {}, 'User not authenticated, use the "Authorization" header'),
        ("wrong", {}, "Invalid apikey"),
        ("", {"Authorization": "Basic YWRtaW46YWRtaW4="}, 'User not authenticated, use the "Authorization" header'),
    ],
)
def test_a_missing_or_wrong_key_is_401_with_odoos_error_object(
    odoo: OdooStandin, key: str | None, headers: dict[str, str], message: str
) -> None:
    response = post(odoo, "/json/2/res.partner/search_read", {"domain": []}, key=key or None, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert (body["name"], body["message"], body["arguments"]) == (
        "werkzeug.exceptions.Unauthorized",
        message,
        [message, 401],
    )
    assert odoo.effects() == []


def test_the_bearer_scheme_is_case_insensitive(odoo: OdooStandin) -> None:
    response = post(
        odoo, "/json/2/res.partner/search_count", {"domain": []}, key=None, headers={"Authorization": f"Bearer  {KEY}"}
    )
    assert response.status_code == 200 and response.json() >= 4


def test_a_revoked_key_is_refused_on_both_apis(odoo: OdooStandin) -> None:
    assert post(odoo, "/json/2/res.partner/search_count", {"domain": []}).status_code == 200
    httpx.post(f"{odoo.url}/_standin/api_keys", json={"key": KEY, "active": False}).raise_for_status()
    assert post(odoo, "/json/2/res.partner/search_count", {"domain": []}).status_code == 401
    assert odoo.rejected_keys == 1
    login = {"service": "common", "method": "login", "args": ["odoo", "admin", KEY]}
    reply = httpx.post(f"{odoo.url}/jsonrpc", json={"jsonrpc": "2.0", "method": "call", "params": login, "id": 1})
    assert reply.json()["result"] is False


def test_the_database_header_picks_the_database(odoo: OdooStandin) -> None:
    unknown = post(odoo, "/json/2/res.partner/search_count", {"domain": []}, headers={"X-Odoo-Database": "other"})
    assert unknown.status_code == 404 and unknown.json()["name"] == "werkzeug.exceptions.NotFound"
    monodb = httpx.post(
        f"{odoo.url}/json/2/res.partner/search_count", json={"domain": []}, headers={"Authorization": f"bearer {KEY}"}
    )
    assert monodb.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status", "name"),
    [
        ("/json/2/res.partner/search_read", {"ids": [7], "domain": []}, 422, "werkzeug.exceptions.UnprocessableEntity"),
        ("/json/2/res.partner/search_read", {"no_such_argument": 1}, 422, "werkzeug.exceptions.UnprocessableEntity"),
        ("/json/2/no.such.model/search_read", {}, 404, "werkzeug.exceptions.NotFound"),
        ("/json/2/res.partner/no_such_method", {}, 404, "werkzeug.exceptions.NotFound"),
        ("/json/2/res.partner/_private", {}, 403, "odoo.exceptions.AccessError"),
        (
            "/json/2/sale.order/create",
            {"vals_list": [{"client_order_ref": "x"}]},
            422,
            "odoo.exceptions.ValidationError",
        ),
        ("/json/2/res.partner/read", {"ids": [99999], "fields": ["name"]}, 404, "odoo.exceptions.MissingError"),
        ("/json/2/res.partner", {}, 404, "werkzeug.exceptions.NotFound"),
    ],
)
def test_errors_carry_odoos_status_and_name(odoo: OdooStandin, path: str, body: Any, status: int, name: str) -> None:
    response = post(odoo, path, body)
    assert response.status_code == status, response.text
    assert set(response.json()) == ERROR_KEYS and response.json()["name"] == name


def test_a_body_that_is_not_json_is_400_and_a_wrong_type_415(odoo: OdooStandin) -> None:
    headers = {"Authorization": f"bearer {KEY}", "Content-Type": "application/json"}
    bad = httpx.post(f"{odoo.url}/json/2/res.partner/search_count", content=b"{nope", headers=headers)
    assert bad.status_code == 400 and bad.json()["message"].startswith("could not parse the body as json")
    headers["Content-Type"] = "text/plain"
    assert httpx.post(f"{odoo.url}/json/2/res.partner/search_count", content=b"{}", headers=headers).status_code == 415


def test_only_post_is_routed(odoo: OdooStandin) -> None:
    response = httpx.get(f"{odoo.url}/json/2/res.partner/search_read", headers={"Authorization": f"bearer {KEY}"})
    assert response.status_code == 404 and "POST /json/2/<model>/<method>" in response.json()["message"]


def test_one_transaction_per_request(odoo: OdooStandin) -> None:
    # The second order is invalid: the whole request is rolled back, the first order too.
    vals = [{"partner_id": 7, "client_order_ref": "TX-1"}, {"client_order_ref": "TX-2"}]
    response = post(odoo, "/json/2/sale.order/create", {"vals_list": vals})
    assert response.status_code == 422
    assert [o for o in odoo.records("sale.order") if o["client_order_ref"] in ("TX-1", "TX-2")] == []
    assert odoo.effects("sale.order") == []


def test_the_context_travels_beside_the_arguments(odoo: OdooStandin) -> None:
    quant = {"product_id": 2, "location_id": 8, "inventory_quantity": 5}
    context = {"inventory_mode": True, "inventory_name": "GW-ctx"}
    created = post(odoo, "/json/2/stock.quant/create", {"vals_list": [quant], "context": context})
    assert created.status_code == 200
    applied = post(odoo, "/json/2/stock.quant/action_apply_inventory", {"ids": created.json(), "context": context})
    assert applied.status_code == 200 and applied.json() is None
    assert [m["name"].startswith("GW-ctx") for m in odoo.records("stock.move")] == [True]


@pytest.mark.parametrize(
    ("error_name", "status"),
    [
        ("psycopg2.errors.SerializationFailure", 500),
        ("odoo.exceptions.LockError", 409),
        ("odoo.exceptions.UserError", 422),
        ("odoo.exceptions.AccessDenied", 403),
    ],
)
def test_an_injected_error_has_the_status_odoo_gives_it(odoo: OdooStandin, error_name: str, status: int) -> None:
    odoo.add_fault(FaultRule(kind="error", model="res.partner", method="create", error_name=error_name, message="inj"))
    response = post(odoo, "/json/2/res.partner/create", {"vals_list": [{"name": "F"}]})
    assert response.status_code == status
    assert (response.json()["name"], response.json()["message"]) == (error_name, "inj")
    assert odoo.effects("res.partner") == []


def test_commit_then_drop_commits_and_loses_the_answer(odoo: OdooStandin) -> None:
    odoo.add_fault(FaultRule(kind="commit_then_drop", model="res.partner", method="create"))
    with pytest.raises(httpx.TransportError):
        post(odoo, "/json/2/res.partner/create", {"vals_list": [{"name": "Dropped"}]})
    assert [p["name"] for p in odoo.records("res.partner") if p["name"] == "Dropped"] == ["Dropped"]


def test_http_status_and_non_json_faults_execute_nothing(odoo: OdooStandin) -> None:
    odoo.add_fault(FaultRule(kind="http_status", model="res.partner", method="create", status=502))
    odoo.add_fault(FaultRule(kind="non_json", model="res.partner", method="create"))
    first = post(odoo, "/json/2/res.partner/create", {"vals_list": [{"name": "A"}]})
    second = post(odoo, "/json/2/res.partner/create", {"vals_list": [{"name": "A"}]})
    assert first.status_code == 502 and "text/html" in first.headers["content-type"]
    assert second.status_code == 200 and "text/html" in second.headers["content-type"]
    assert odoo.effects("res.partner") == []


def test_a_held_transaction_overtaken_by_a_commit_is_retried(odoo: OdooStandin) -> None:
    # delay/inside on JSON-2 holds the transaction like on /jsonrpc (concurrency.py).
    odoo.configure(concurrency_backoff_scale=0.01)
    odoo.add_fault(FaultRule(kind="delay", phase="inside", seconds=0.5, model="res.partner", method="write"))
    held = threading.Thread(
        target=post, args=(odoo, "/json/2/res.partner/write", {"ids": [8], "vals": {"name": "Held"}})
    )
    held.start()
    deadline = time.monotonic() + 5
    while odoo.held_open == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert odoo.held_open == 1
    assert post(odoo, "/json/2/res.partner/write", {"ids": [8], "vals": {"name": "Quick"}}).status_code == 200
    held.join()
    assert odoo.serialization_failures >= 1
    assert [p["name"] for p in odoo.records("res.partner") if p["id"] == 8] == ["Held"]
