"""The JSON-2 adapter and ``ODOO_API`` selection, against the Odoo stand-in over real HTTP.

Effects are counted on Odoo's side (the stand-in's effect log and records), by reference."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from shared.config import Settings
from shared.errors import ConfigurationError, RetryableTaskError
from shared.kinds import KINDS, task_reference
from tests.odoo_standin import FaultRule, OdooStandin
from workers.classify import FailureClass, OdooLoginRejected, classify
from workers.json2_wire import Json2Error
from workers.odoo_api import AutoOdooClient, check_odoo_settings, open_odoo, parse_version, probe_version
from workers.odoo_client import OdooRpcClient
from workers.odoo_json2 import Json2Client

KEY = "json2-test-key"
SALE = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}
COUNT = {
    "location": "WH/Stock",
    "lines": [{"product": "DEMO-002", "quantity": 7}, {"product": "DEMO-003", "quantity": 0}],
}


@pytest.fixture
def odoo19() -> Iterator[OdooStandin]:
    s = OdooStandin(port=0, version="19.0", api_keys=(KEY,)).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def odoo17() -> Iterator[OdooStandin]:
    s = OdooStandin(port=0, version="17.0", api_keys=(KEY,)).start()
    try:
        yield s
    finally:
        s.stop()


def settings(standin: OdooStandin, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "odoo_url": standin.url,
        "odoo_db": "odoo",
        "odoo_password": "admin",
        "odoo_api_key": KEY,
        "odoo_api": "json2",
        "odoo_timeout": 2.0,
        **changes,
    }
    return Settings.model_validate(values)


def orders_under(standin: OdooStandin, ref: str) -> list[dict[str, Any]]:
    return [o for o in standin.records("sale.order") if o["client_order_ref"] == ref]


def test_both_kinds_apply_once_and_find_their_effect_over_json2(odoo19: OdooStandin) -> None:
    odoo = Json2Client(settings(odoo19))
    ref = task_reference(str(uuid.uuid4()))
    sale, count = KINDS["sale.order.create"], KINDS["inventory.adjust"]
    assert sale.find_effect(odoo, ref, SALE) is None and count.find_effect(odoo, ref, COUNT) is None

    order = sale.apply(odoo, ref, SALE)
    assert sale.find_effect(odoo, ref, SALE) == order
    assert [o["id"] for o in orders_under(odoo19, ref)] == [order["sale_order_id"]]

    counted = count.apply(odoo, ref, COUNT)
    # Odoo 16+ records a done move of quantity 0 for a count equal to the stock (DEMO-003).
    assert counted["changed"] is True and len(counted["move_ids"]) == 2
    assert counted["unchanged_products"] == ["DEMO-003"]
    # The context went in the body, so Odoo named the moves after the task (inventory_name).
    moves = [m for m in odoo19.records("stock.move") if m["id"] in counted["move_ids"]]
    assert moves and all(m["name"].startswith(ref) for m in moves)
    applied = odoo19.effects("stock.quant", "action_apply_inventory")
    assert [e.context for e in applied] == [{"inventory_mode": True, "inventory_name": ref}]
    assert count.find_effect(odoo, ref, COUNT) == {
        "move_ids": counted["move_ids"],
        "changed": True,
        "unchanged_products": ["DEMO-003"],
    }
    assert odoo19.dispatcher.json2_calls > 0 and odoo19.login_attempts == 0  # no login on JSON-2


def test_requests_carry_the_key_the_database_and_named_arguments() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=[{"id": 3, "default_code": "DEMO-001"}])

    s = Settings(odoo_url="https://odoo.example/sub", odoo_db="shop", odoo_api_key=KEY)  # type: ignore[arg-type]
    odoo = Json2Client(s, transport=httpx.MockTransport(handler))
    assert odoo.execute_kw("product.product", "search_read", [], {"domain": [], "fields": ["id"]}) == [
        {"id": 3, "default_code": "DEMO-001"}
    ]
    odoo.execute_kw("stock.quant", "action_apply_inventory", [[1, 2]], {"context": {"inventory_mode": True}})
    first, second = seen
    assert str(first.url) == "https://odoo.example/sub/json/2/product.product/search_read"
    assert first.method == "POST"
    assert first.headers["authorization"] == f"bearer {KEY}"
    assert first.headers["x-odoo-database"] == "shop"
    assert first.headers["content-type"].startswith("application/json")
    assert json.loads(first.content) == {"domain": [], "fields": ["id"]}
    assert json.loads(second.content) == {"ids": [1, 2], "context": {"inventory_mode": True}}


def test_positional_arguments_fail_before_anything_is_sent(odoo19: OdooStandin) -> None:
    odoo = Json2Client(settings(odoo19))
    with pytest.raises(TypeError):
        odoo.execute_kw("res.partner", "search", [[["name", "=", "x"]]])
    assert odoo19.dispatcher.json2_calls == 0


def test_a_revoked_key_fails_once_with_one_clear_error_and_is_never_sent_again(odoo19: OdooStandin) -> None:
    odoo = Json2Client(settings(odoo19))
    ref = task_reference(str(uuid.uuid4()))
    KINDS["sale.order.create"].apply(odoo, ref, SALE)
    odoo19.set_api_key(KEY, active=False)
    errors = []
    for _ in range(3):
        with pytest.raises(OdooLoginRejected) as info:
            KINDS["sale.order.create"].find_effect(odoo, ref, SALE)
        errors.append(info.value)
    assert odoo19.rejected_keys == 1  # one request with the revoked key, then none
    got = classify(errors[0])
    assert (got.failure, got.code) == (FailureClass.PERMANENT, "odoo_api_key_rejected")
    assert "revoked" in got.message and "ODOO_API_KEY" in got.message
    assert {str(e) for e in errors} == {str(errors[0])}


def test_a_wrong_key_is_refused_with_401(odoo19: OdooStandin) -> None:
    odoo = Json2Client(settings(odoo19, odoo_api_key="not-a-key"))
    with pytest.raises(OdooLoginRejected, match="HTTP 401: Invalid apikey"):
        odoo.execute_kw("res.partner", "search_read", [], {"domain": []})
    assert odoo19.failed_logins == 0 and odoo19.rejected_keys == 1


def test_json2_on_an_odoo_without_it_is_permanent_and_says_why(odoo17: OdooStandin) -> None:
    odoo = Json2Client(settings(odoo17))
    with pytest.raises(Json2Error) as info:
        odoo.execute_kw("res.partner", "search_read", [], {"domain": []})
    got = classify(info.value)
    assert (got.failure, got.code) == (FailureClass.PERMANENT, "odoo_not_found")
    assert "19.0 or later" in got.message


@pytest.mark.parametrize(
    ("rule", "expected", "committed"),
    [
        (FaultRule(kind="error", error_name="psycopg2.errors.SerializationFailure"), FailureClass.TRANSIENT, 0),
        (FaultRule(kind="error", error_name="odoo.exceptions.ValidationError"), FailureClass.PERMANENT, 0),
        (FaultRule(kind="http_status", status=503), FailureClass.TRANSIENT, 0),
        (FaultRule(kind="http_status", status=502), FailureClass.AMBIGUOUS, 0),
        (FaultRule(kind="reset"), FailureClass.AMBIGUOUS, 0),
        (FaultRule(kind="non_json"), FailureClass.AMBIGUOUS, 0),
        (FaultRule(kind="commit_then_drop"), FailureClass.AMBIGUOUS, 1),
        (FaultRule(kind="delay", phase="after", seconds=2.5), FailureClass.AMBIGUOUS, 1),
    ],
)
def test_faults_on_json2_are_classified_like_on_jsonrpc(
    odoo19: OdooStandin, rule: FaultRule, expected: FailureClass, committed: int
) -> None:
    odoo = Json2Client(settings(odoo19))
    ref = task_reference(str(uuid.uuid4()))
    rule.model, rule.method = "sale.order", "create"
    odoo19.add_fault(rule)
    with pytest.raises(Exception) as info:
        KINDS["sale.order.create"].apply(odoo, ref, SALE)
    assert classify(info.value).failure is expected, repr(info.value)
    assert len(orders_under(odoo19, ref)) == committed
    # Whatever happened, the lookup by reference tells, and a retry applies at most once.
    if KINDS["sale.order.create"].find_effect(odoo, ref, SALE) is None:
        KINDS["sale.order.create"].apply(odoo, ref, SALE)
    assert len(orders_under(odoo19, ref)) == 1


def test_odoo_unreachable_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = Settings(odoo_url=f"http://127.0.0.1:{port}", odoo_api_key=KEY, odoo_timeout=1.0)  # type: ignore[arg-type]
    with pytest.raises(httpx.ConnectError) as info:
        Json2Client(s).execute_kw("res.partner", "search_read", [], {"domain": []})
    assert classify(info.value).failure is FailureClass.TRANSIENT


# -- ODOO_API -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "version"),
    [
        ({"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}, (19, 0)),
        ({"version_info": ["saas~18", 4, 0, "final", 0, ""], "version": "saas-18.4"}, (18, 4)),
        ({"version_info": [20, 1, 0, "alpha", 1, ""], "version": "saas-20.1a1"}, (20, 1)),
        ({"version": "19.0+e"}, (19, 0)),
        ({"unrelated": 1}, None),
        ("19.0", None),
    ],
)
def test_parse_version(payload: Any, version: tuple[int, int] | None) -> None:
    assert parse_version(payload) == version


def test_probe_reads_the_version_without_a_login(odoo19: OdooStandin, odoo17: OdooStandin) -> None:
    assert probe_version(settings(odoo19)) == (19, 0)
    assert probe_version(settings(odoo17)) is None  # no /web/version before saas~18.4
    assert odoo19.login_attempts == odoo17.login_attempts == 0


def test_probe_failure_is_a_retry_not_a_guess() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    s = Settings(odoo_url=f"http://127.0.0.1:{port}", odoo_api="auto", odoo_timeout=1.0)  # type: ignore[arg-type]
    with pytest.raises(RetryableTaskError):
        AutoOdooClient(s).execute_kw("res.partner", "search_read", [], {"domain": []})


def test_auto_picks_json2_on_19_with_a_key(odoo19: OdooStandin) -> None:
    odoo = open_odoo(settings(odoo19, odoo_api="auto"))
    assert odoo.api == "auto"  # nothing sent yet
    ref = task_reference(str(uuid.uuid4()))
    KINDS["sale.order.create"].apply(odoo, ref, SALE)
    assert odoo.api == "json2"
    assert odoo19.login_attempts == 0 and odoo19.dispatcher.json2_calls > 0
    assert len(orders_under(odoo19, ref)) == 1


def test_auto_stays_on_jsonrpc_on_17(odoo17: OdooStandin) -> None:
    odoo = open_odoo(settings(odoo17, odoo_api="auto"))
    ref = task_reference(str(uuid.uuid4()))
    KINDS["sale.order.create"].apply(odoo, ref, SALE)
    assert odoo.api == "jsonrpc" and odoo17.login_attempts == 1 and odoo17.dispatcher.json2_calls == 0
    assert len(orders_under(odoo17, ref)) == 1


def test_auto_without_a_key_stays_on_jsonrpc_on_19(odoo19: OdooStandin) -> None:
    odoo = open_odoo(settings(odoo19, odoo_api="auto", odoo_api_key=""))
    KINDS["sale.order.create"].find_effect(odoo, task_reference("x"), SALE)
    assert odoo.api == "jsonrpc" and odoo19.dispatcher.json2_calls == 0


def test_auto_asks_the_version_once() -> None:
    asked: list[Settings] = []
    calls: list[tuple[str, str]] = []

    class Fake:
        api = "json2"

        def __init__(self, settings: Settings) -> None:
            pass

        def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
            calls.append((model, method))
            return []

    def probe(s: Settings) -> tuple[int, int]:
        asked.append(s)
        return (19, 0)

    s = Settings(odoo_api="auto", odoo_api_key=KEY)  # type: ignore[arg-type]
    odoo = AutoOdooClient(s, probe=probe, json2=Fake, jsonrpc=Fake)
    for _ in range(3):
        odoo.execute_kw("res.partner", "search_read", [], {})
    assert len(asked) == 1 and len(calls) == 3


def test_jsonrpc_accepts_the_api_key_as_password(odoo17: OdooStandin) -> None:
    odoo = open_odoo(settings(odoo17, odoo_api="jsonrpc", odoo_password="", odoo_version="17.0"))
    assert isinstance(odoo, OdooRpcClient)
    assert odoo.execute_kw(
        "res.partner", "search_read", [], {"domain": [["name", "=", "Demo Customer"]], "fields": ["id"]}
    )


def test_json2_without_a_key_is_refused_at_start() -> None:
    with pytest.raises(ConfigurationError, match="ODOO_API_KEY"):
        check_odoo_settings(Settings(odoo_api="json2"))  # type: ignore[arg-type]
    check_odoo_settings(Settings(odoo_api="auto"))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        Json2Client(Settings(odoo_api="json2"))  # type: ignore[arg-type]
