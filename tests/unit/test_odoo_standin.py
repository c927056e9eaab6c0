"""The Odoo stand-in, exercised through the real odoorpc 0.10.1 client (and raw HTTP where
odoorpc hides the wire format)."""

from __future__ import annotations

import copy
import errno
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import odoorpc
import pytest

from tests.odoo_standin import Effect, FaultRule, OdooStandin, orm
from tests.odoo_standin.domain import LeafValue, matches
from tests.odoo_standin.models import Env, call
from tests.odoo_standin.store import FieldIndex

ROOT = Path(__file__).resolve().parents[2]
INV_CTX = {"inventory_mode": True}


@pytest.fixture
def standin() -> Iterator[OdooStandin]:
    s = OdooStandin(port=0, version="17.0", api_keys=("key-123",)).start()
    try:
        yield s
    finally:
        s.stop()


def client(s: OdooStandin, timeout: float = 5, login: bool = True) -> Any:
    odoo = odoorpc.ODOO("127.0.0.1", port=s.port, version=s.version, timeout=timeout)
    if login:
        odoo.login("odoo", "admin", "admin")
    return odoo


@pytest.fixture
def odoo(standin: OdooStandin) -> Any:
    return client(standin)


def raw(s: OdooStandin, path: str, params: Any, request_id: int = 42) -> tuple[int, Any]:
    """POST a JSON-RPC envelope and return (HTTP status, decoded body) without odoorpc."""
    body = json.dumps({"jsonrpc": "2.0", "method": "call", "params": params, "id": request_id})
    req = urllib.request.Request(s.url + path, data=body.encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def control(s: OdooStandin, verb: str, path: str, data: Any = None) -> tuple[int, Any]:
    req = urllib.request.Request(
        s.url + path,
        method=verb,
        data=None if data is None else json.dumps(data).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def rpc_error_name(exc: pytest.ExceptionInfo[Any]) -> str:
    return str(exc.value.info["data"]["name"])


# --------------------------------------------------------------------------- protocol


def test_version_info_and_result_envelope(standin: OdooStandin) -> None:
    status, body = raw(standin, "/web/webclient/version_info", {}, request_id=777)
    assert status == 200
    assert body == {
        "jsonrpc": "2.0",
        "id": 777,
        "result": {
            "server_version": "17.0",
            "server_version_info": [17, 0, 0, "final", 0, ""],
            "server_serie": "17.0",
            "protocol_version": 1,
        },
    }
    # odoorpc without version= reads server_version from that route
    assert odoorpc.ODOO("127.0.0.1", port=standin.port, timeout=5).version == "17.0"


def test_login_ok_and_context(standin: OdooStandin, odoo: Any) -> None:
    assert odoo.env.uid == 2
    assert odoo.env.context == {"lang": "en_US", "tz": "Europe/Brussels", "uid": 2}
    assert odoo.env.user.name == "Mitchell Admin"
    assert standin.login_attempts == 1 and standin.failed_logins == 0


def test_bad_password_returns_false_and_odoorpc_raises(standin: OdooStandin) -> None:
    _, body = raw(standin, "/jsonrpc", {"service": "common", "method": "login", "args": ["odoo", "admin", "nope"]})
    assert body["result"] is False and "error" not in body
    with pytest.raises(odoorpc.error.RPCError, match="Wrong login ID or password") as exc:
        client(standin, login=False).login("odoo", "admin", "wrong")
    assert exc.value.info is False
    assert (standin.login_attempts, standin.failed_logins) == (2, 2)


def test_login_cooldown_after_five_failures(standin: OdooStandin) -> None:
    odoo = client(standin, login=False)
    for _ in range(5):
        with pytest.raises(odoorpc.error.RPCError, match="Wrong login"):
            odoo.login("odoo", "admin", "bad")
    with pytest.raises(odoorpc.error.RPCError, match="Too many login failures") as exc:
        odoo.login("odoo", "admin", "admin")  # even the right password is refused now
    assert rpc_error_name(exc) == "odoo.exceptions.AccessDenied"
    assert standin.failed_logins == 6
    standin.reset()
    odoo.login("odoo", "admin", "admin")
    assert odoo.env.uid == 2


def test_api_key_works_as_password(standin: OdooStandin) -> None:
    odoo = client(standin, login=False)
    odoo.login("odoo", "admin", "key-123")
    assert odoo.execute_kw("res.partner", "search_count", [[]]) == 4


def test_object_call_with_wrong_password_is_access_denied(standin: OdooStandin) -> None:
    odoo = client(standin)
    odoo._password = "stolen"  # credentials are re-checked on every object call
    with pytest.raises(odoorpc.error.RPCError) as exc:
        odoo.execute_kw("res.partner", "search", [[]])
    assert rpc_error_name(exc) == "odoo.exceptions.AccessDenied"
    assert exc.value.info["data"]["debug"] == ""  # AccessDenied suppresses its traceback
    assert exc.value.info["code"] == 200 and exc.value.info["message"] == "Odoo Server Error"


def test_wrong_database(standin: OdooStandin) -> None:
    with pytest.raises(odoorpc.error.RPCError, match='database "other" does not exist') as exc:
        client(standin, login=False).login("other", "admin", "admin")
    assert rpc_error_name(exc) == "psycopg2.OperationalError"


def test_private_unknown_model_and_unknown_method(odoo: Any) -> None:
    with pytest.raises(odoorpc.error.RPCError) as exc:
        odoo.execute_kw("res.partner", "_search", [[]])
    assert rpc_error_name(exc) == "odoo.exceptions.AccessError"
    assert str(exc.value) == ("Private methods (such as 'res.partner._search') cannot be called remotely.")
    with pytest.raises(odoorpc.error.RPCError, match="Object x.y doesn't exist") as exc:
        odoo.execute_kw("x.y", "search", [[]])
    assert rpc_error_name(exc) == "odoo.exceptions.UserError"
    with pytest.raises(odoorpc.error.RPCError) as exc:
        odoo.execute_kw("res.partner", "frobnicate", [[]])
    assert rpc_error_name(exc) == "builtins.AttributeError"
    assert str(exc.value) == "The method 'res.partner.frobnicate' does not exist"


def test_bad_json_and_unknown_path(standin: OdooStandin) -> None:
    req = urllib.request.Request(
        standin.url + "/jsonrpc", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(req, timeout=5)
    assert exc.value.code == 400
    status, body = raw(standin, "/json/2/res.partner/search", {})
    assert status == 200  # 17+ answer JSON-route errors with HTTP 200
    assert body["error"]["code"] == 404
    assert body["error"]["data"]["name"] == "werkzeug.exceptions.NotFound"


# --------------------------------------------------------------------------- generic ORM


def test_search_read_products(odoo: Any) -> None:
    rows = odoo.execute_kw(
        "product.product",
        "search_read",
        [[("default_code", "=like", "DEMO-%")]],
        {"fields": ["default_code", "name", "type"], "order": "default_code desc", "limit": 3},
    )
    assert [r["default_code"] for r in rows] == ["DEMO-020", "DEMO-019", "DEMO-018"]
    assert all(r["type"] == "product" for r in rows)
    assert odoo.execute_kw("product.product", "search_count", [[]]) == 21
    service = odoo.execute_kw(
        "product.product", "search_read", [[("default_code", "=", "SERVICE-001")]], {"fields": ["type"]}
    )
    assert service == [{"id": 21, "type": "service"}]
    fields = odoo.execute_kw("stock.quant", "fields_get", [], {"attributes": ["type", "relation"]})
    assert fields["product_id"] == {"type": "many2one", "relation": "product.product"}


def test_domain_operators_and_missing_records(odoo: Any) -> None:
    found = odoo.execute_kw(
        "res.partner",
        "search",
        [["|", ("name", "ilike", "second"), "&", ("is_company", "=", True), ("ref", "!=", False)]],
    )
    assert sorted(found) == [7, 8]
    assert odoo.execute_kw("res.partner", "search", [["!", ("id", "in", [1, 3, 7])]]) == [8]
    assert odoo.execute_kw("stock.location", "search", [[("complete_name", "=", "WH/Stock")]]) == [8]
    ids = odoo.execute_kw("product.product", "search", [[("list_price", ">=", 190), ("type", "in", ["product"])]])
    assert ids == [19, 20]
    with pytest.raises(odoorpc.error.RPCError, match="Record does not exist") as exc:
        odoo.execute_kw("res.partner", "read", [[8, 999]], {"fields": ["name"]})
    assert rpc_error_name(exc) == "odoo.exceptions.MissingError"
    rows = odoo.execute_kw("res.users", "read", [[2]], {"fields": ["partner_id"], "load": "_classic_write"})
    assert rows == [{"id": 2, "partner_id": 3}]


def test_domain_unit_semantics() -> None:
    def lookup_for(row: dict[str, Any]) -> Any:
        return lambda path: [LeafValue(row[path], "char")]

    row = {"name": "GW-1234 (Mitchell Admin)", "ref": False}
    assert matches([("name", "=like", "GW-1234%")], lookup_for(row))
    assert not matches([("name", "=like", "gw-1234%")], lookup_for(row))
    assert matches([("name", "=ilike", "gw-1234%")], lookup_for(row))
    assert matches([("ref", "=", False), ("name", "like", "Mitchell")], lookup_for(row))
    assert matches([("ref", "not ilike", "x")], lookup_for(row))  # NULL matches negations
    assert not matches(["|", ("ref", "!=", False), ("name", "=", "x")], lookup_for(row))
    with pytest.raises(ValueError):
        matches(["&", ("name", "=", "x")], lookup_for(row))


def test_failed_call_changes_nothing(standin: OdooStandin, odoo: Any) -> None:
    missing = "Missing required fields on sale.order"
    with pytest.raises(odoorpc.error.RPCError, match=missing) as exc:
        odoo.execute_kw("sale.order", "create", [[{"partner_id": 7}, {"client_order_ref": "x"}]])
    assert rpc_error_name(exc) == "odoo.exceptions.ValidationError"
    assert standin.records("sale.order") == [] and standin.effects() == []
    assert odoo.execute_kw("sale.order", "create", [{"partner_id": 7}]) == 1


# --------------------------------------------------------------------------- business flows


def test_inventory_mode_upsert_and_apply(standin: OdooStandin, odoo: Any) -> None:
    name = f"GW-{uuid.uuid4()}"
    ctx = {**INV_CTX, "inventory_name": name}
    vals = {"product_id": 1, "location_id": 8, "inventory_quantity": 5}
    first = odoo.execute_kw("stock.quant", "create", [vals], {"context": ctx})
    second = odoo.execute_kw("stock.quant", "create", [{**vals, "inventory_quantity": 12}], {"context": ctx})
    assert first == second  # upsert on (product, location)
    [quant] = odoo.execute_kw(
        "stock.quant",
        "read",
        [[first]],
        {"fields": ["inventory_quantity", "inventory_quantity_set", "inventory_diff_quantity", "quantity"]},
    )
    assert quant == {
        "id": first,
        "inventory_quantity": 12.0,
        "inventory_quantity_set": True,
        "inventory_diff_quantity": 12.0,
        "quantity": 0.0,
    }
    # None results carry no "result" key on the wire
    _, body = raw(
        standin,
        "/jsonrpc",
        {
            "service": "object",
            "method": "execute_kw",
            "args": [
                "odoo",
                2,
                "admin",
                "stock.quant",
                "action_apply_inventory",
                [[first]],
                {"context": ctx},
            ],
        },
    )
    assert "result" not in body and "error" not in body
    moves = odoo.execute_kw(
        "stock.move",
        "search_read",
        [[("is_inventory", "=", True), ("name", "=like", f"{name}%")]],
        {
            "fields": ["name", "state", "quantity", "location_id", "location_dest_id", "product_id"],
            "load": "_classic_write",
        },
    )
    assert moves == [
        {
            "id": moves[0]["id"],
            "name": f"{name} (Mitchell Admin)",
            "state": "done",
            "quantity": 12.0,
            "location_id": 14,
            "location_dest_id": 8,
            "product_id": 1,
        }
    ]
    [after] = odoo.execute_kw(
        "stock.quant",
        "read",
        [[first]],
        {"fields": ["quantity", "inventory_quantity_set", "inventory_diff_quantity"]},
    )
    assert after == {
        "id": first,
        "quantity": 12.0,
        "inventory_quantity_set": False,
        "inventory_diff_quantity": 0.0,
    }
    assert odoo.execute_kw("product.product", "read", [[1]], {"fields": ["qty_available"]}) == [
        {"id": 1, "qty_available": 12.0}
    ]
    assert [e.method for e in standin.effects(model="stock.quant")] == [
        "create",
        "create",
        "action_apply_inventory",
    ]


def test_quant_rules(standin: OdooStandin, odoo: Any) -> None:
    vals = {"product_id": 2, "location_id": 8, "inventory_quantity": 1}
    with pytest.raises(odoorpc.error.RPCError, match="consumables or services") as exc:
        odoo.execute_kw("stock.quant", "create", [{**vals, "product_id": 21}], {"context": INV_CTX})
    assert rpc_error_name(exc) == "odoo.exceptions.ValidationError"
    with pytest.raises(odoorpc.error.RPCError, match="restricted"):
        odoo.execute_kw("stock.quant", "create", [{**vals, "quantity": 3}], {"context": INV_CTX})
    with pytest.raises(odoorpc.error.RPCError, match="internal or transit"):
        odoo.execute_kw("stock.quant", "create", [{**vals, "location_id": 5}], {"context": INV_CTX})
    # Without inventory_mode Odoo inserts a second row for the same product/location.
    a = odoo.execute_kw("stock.quant", "create", [vals])
    b = odoo.execute_kw("stock.quant", "create", [vals])
    assert a != b and len(standin.records("stock.quant")) == 2


def test_apply_inventory_conflict_when_outdated(standin: OdooStandin, odoo: Any) -> None:
    quant_id = standin.mark_outdated("DEMO-003", "WH/Stock")
    created = odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": 3, "location_id": 8, "inventory_quantity": 4}],
        {"context": INV_CTX},
    )
    assert created == quant_id
    action = odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant_id]], {"context": INV_CTX})
    assert action["type"] == "ir.actions.act_window"
    assert action["res_model"] == "stock.inventory.conflict" and action["target"] == "new"
    assert action["context"]["default_quant_to_fix_ids"] == [quant_id]
    assert standin.records("stock.move") == []
    assert standin.effects(method="action_apply_inventory") == []
    standin.mark_outdated("DEMO-003", "WH/Stock", outdated=False)
    assert odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant_id]]) is None
    assert len(standin.records("stock.move")) == 1


def test_sale_order_flow(standin: OdooStandin, odoo: Any) -> None:
    ref = f"GW-{uuid.uuid4()}"
    order_id = odoo.execute_kw(
        "sale.order",
        "create",
        [
            {
                "partner_id": 7,
                "client_order_ref": ref,
                "origin": "gateway",
                "order_line": [
                    (0, 0, {"product_id": 4, "product_uom_qty": 2}),
                    (0, 0, {"product_id": 5, "product_uom_qty": 1, "name": "custom"}),
                ],
            }
        ],
    )
    found = odoo.execute_kw(
        "sale.order",
        "search_read",
        [[("client_order_ref", "=", ref)]],
        {"fields": ["name", "state", "partner_id", "order_line", "origin"]},
    )
    assert found == [
        {
            "id": order_id,
            "name": "S00001",
            "state": "draft",
            "partner_id": [7, "Demo Customer"],
            "order_line": [1, 2],
            "origin": "gateway",
        }
    ]
    lines = standin.records("sale.order.line")
    assert [(ln["order_id"], ln["product_id"], ln["product_uom_qty"], ln["name"]) for ln in lines] == [
        (order_id, 4, 2.0, "[DEMO-004] Demo Product 4"),
        (order_id, 5, 1.0, "custom"),
    ]
    assert odoo.execute_kw("sale.order", "action_confirm", [[order_id]]) is True
    with pytest.raises(odoorpc.error.RPCError, match="not in a state requiring") as exc:
        odoo.execute_kw("sale.order", "action_confirm", [[order_id]])
    assert rpc_error_name(exc) == "odoo.exceptions.UserError"
    assert standin.records("sale.order")[0]["state"] == "sale"
    with pytest.raises(odoorpc.error.RPCError, match="Missing required fields on sale.order"):
        odoo.execute_kw("sale.order", "create", [{"client_order_ref": "no partner"}])
    assert odoo.execute_kw("sale.order", "create", [{"partner_id": 8}]) == order_id + 1
    assert standin.records("sale.order")[1]["name"] == "S00002"


def test_concurrent_calls_are_serialized(standin: OdooStandin) -> None:
    clients = [client(standin) for _ in range(8)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda o: o.execute_kw("sale.order", "create", [{"partner_id": 7}]), clients))
    assert sorted(ids) == list(range(1, 9))
    assert sorted(r["name"] for r in standin.records("sale.order")) == [f"S{n:05d}" for n in range(1, 9)]
    assert [e.seq for e in standin.effects()] == list(range(1, 9))


def test_odoo_18_storable_products() -> None:
    with OdooStandin(port=0, version="18.0") as s:
        odoo = client(s)
        [product] = odoo.execute_kw(
            "product.product",
            "search_read",
            [[("default_code", "=", "DEMO-001")]],
            {"fields": ["type", "is_storable"]},
        )
        assert product == {"id": 1, "type": "consu", "is_storable": True}
        quant = odoo.execute_kw(
            "stock.quant",
            "create",
            [{"product_id": 1, "location_id": 8, "inventory_quantity": 2}],
            {"context": INV_CTX},
        )
        odoo.execute_kw("stock.quant", "action_apply_inventory", [[quant]])
        [move] = s.records("stock.move")
        assert move["name"] == "Product Quantity Updated (Mitchell Admin)"


# --------------------------------------------------------------------------- faults


def test_fault_error(standin: OdooStandin, odoo: Any) -> None:
    standin.add_fault(
        FaultRule(
            kind="error",
            model="sale.order",
            method="create",
            error_name="psycopg2.errors.SerializationFailure",
            message="could not serialize access due to concurrent update",
        )
    )
    with pytest.raises(odoorpc.error.RPCError, match="could not serialize") as exc:
        odoo.execute_kw("sale.order", "create", [{"partner_id": 7}])
    assert rpc_error_name(exc) == "psycopg2.errors.SerializationFailure"
    assert standin.records("sale.order") == []  # not executed
    assert odoo.execute_kw("sale.order", "create", [{"partner_id": 7}]) == 1  # rule used up


def test_fault_http_status(standin: OdooStandin, odoo: Any) -> None:
    standin.add_fault(FaultRule(kind="http_status", status=502, model="res.partner"))
    with pytest.raises(urllib.error.HTTPError) as exc:
        odoo.execute_kw("res.partner", "write", [[8], {"name": "x"}])
    assert exc.value.code == 502
    assert standin.effects() == []


def test_fault_reset(standin: OdooStandin, odoo: Any) -> None:
    standin.add_fault(FaultRule(kind="reset", model="sale.order", method="create"))
    # RST (SO_LINGER 0) after the request was fully read: a reset, not a clean EOF (which
    # would be http.client.RemoteDisconnected, a ConnectionResetError subclass without errno)
    with pytest.raises(ConnectionResetError) as exc:
        odoo.execute_kw("sale.order", "create", [{"partner_id": 7}])
    assert exc.value.errno == errno.ECONNRESET
    assert standin.records("sale.order") == [] and standin.effects() == []


def test_fault_commit_then_drop_records_effect_once(standin: OdooStandin, odoo: Any) -> None:
    standin.add_fault(FaultRule(kind="commit_then_drop", model="sale.order", method="create"))
    ref = "GW-lost-reply"
    with pytest.raises(ConnectionResetError) as exc:
        odoo.execute_kw("sale.order", "create", [{"partner_id": 7, "client_order_ref": ref}])
    assert exc.value.errno == errno.ECONNRESET  # RST, no reply at all
    effects = standin.effects(model="sale.order", method="create")
    assert len(effects) == 1 and isinstance(effects[0], Effect)
    assert effects[0].values["client_order_ref"] == ref
    # the order really exists: a reconciling client finds it by its key
    assert odoo.execute_kw("sale.order", "search", [[("client_order_ref", "=", ref)]]) == effects[0].ids


def test_fault_non_json(standin: OdooStandin, odoo: Any) -> None:
    standin.add_fault(FaultRule(kind="non_json", model="res.partner", method="search"))
    with pytest.raises(json.JSONDecodeError):
        odoo.execute_kw("res.partner", "search", [[]])


def test_fault_delay_before_times_out_but_executes(standin: OdooStandin) -> None:
    odoo = client(standin, timeout=0.3)
    standin.add_fault(FaultRule(kind="delay", seconds=1.0, model="sale.order", method="create"))
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        odoo.execute_kw("sale.order", "create", [{"partner_id": 7}])
    assert time.monotonic() - started < 0.9
    deadline = time.monotonic() + 5
    while not standin.effects() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(standin.effects(model="sale.order")) == 1  # the server still committed it


def test_fault_delay_after_commits_first(standin: OdooStandin) -> None:
    odoo = client(standin, timeout=0.3)
    standin.add_fault(FaultRule(kind="delay", phase="after", seconds=1.0, model="sale.order"))
    with pytest.raises(TimeoutError):
        odoo.execute_kw("sale.order", "create", [{"partner_id": 7}])
    assert len(standin.effects(model="sale.order")) == 1  # committed before the sleep


def test_fault_times_and_matching(standin: OdooStandin, odoo: Any) -> None:
    standin.add_fault(FaultRule(kind="error", model="res.partner", method="search", times=2))
    assert odoo.execute_kw("res.partner", "search_count", [[]]) == 4  # other method unaffected
    for _ in range(2):
        with pytest.raises(odoorpc.error.RPCError, match="Injected fault"):
            odoo.execute_kw("res.partner", "search", [[]])
    assert len(odoo.execute_kw("res.partner", "search", [[]])) == 4
    standin.add_fault(
        FaultRule(
            kind="error",
            model="common",
            method="login",
            times=-1,
            error_name="odoo.exceptions.AccessDenied",
            message="nope",
        )
    )
    for _ in range(3):
        with pytest.raises(odoorpc.error.RPCError, match="nope"):
            client(standin, login=False).login("odoo", "admin", "admin")
    standin.clear_faults()
    client(standin)
    with pytest.raises(ValueError):
        FaultRule(kind="explode")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- control API


def test_http_control_endpoints(standin: OdooStandin, odoo: Any) -> None:
    status, rule = control(
        standin, "POST", "/_standin/faults", {"kind": "http_status", "status": 504, "model": "sale.order"}
    )
    assert status == 201 and rule["status"] == 504
    assert control(standin, "GET", "/_standin/faults")[1][0]["kind"] == "http_status"
    with pytest.raises(urllib.error.HTTPError) as exc:
        odoo.execute_kw("sale.order", "search", [[]])
    assert exc.value.code == 504
    assert control(standin, "POST", "/_standin/faults", {"kind": "bogus"})[0] == 400
    control(standin, "POST", "/_standin/faults", {"kind": "error", "model": "res.partner"})
    assert control(standin, "DELETE", "/_standin/faults") == (200, {"cleared": True})
    odoo.execute_kw("res.partner", "write", [[8], {"name": "Renamed"}])
    odoo.execute_kw("sale.order", "create", [{"partner_id": 8}])
    status, effects = control(standin, "GET", "/_standin/effects?model=res.partner&method=write")
    assert status == 200 and [(e["model"], e["ids"], e["values"]) for e in effects] == [
        ("res.partner", [8], {"name": "Renamed"})
    ]
    assert len(control(standin, "GET", "/_standin/effects")[1]) == 2
    status, partners = control(standin, "GET", "/_standin/records/res.partner")
    assert status == 200 and {p["name"] for p in partners} >= {"Renamed", "Demo Customer"}
    assert control(standin, "GET", "/_standin/records/nope.model")[0] == 404
    status, body = control(standin, "POST", "/_standin/outdated", {"product_code": "DEMO-001", "location": "WH/Stock"})
    assert status == 200 and standin.records("stock.quant")[0]["is_outdated"] is True
    assert control(standin, "POST", "/_standin/reset") == (200, {"reset": True})
    assert standin.effects() == [] and standin.records("sale.order") == []
    assert standin.records("stock.quant") == []
    assert "Renamed" not in {p["name"] for p in standin.records("res.partner")}


def test_cli_runs_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.odoo_standin", "--port", "0", "--version", "16.0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "stand-in on http://127.0.0.1:" in line, line
        port = int(line.rsplit(":", 1)[1].split()[0])
        odoo = odoorpc.ODOO("127.0.0.1", port=port, timeout=5)
        assert odoo.version == "16.0"
        odoo.login("odoo", "admin", "admin")
        logged = [proc.stderr.readline() for _ in range(3)]  # version_info, login, context
        assert any("common.login -> ok" in entry for entry in logged), logged
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- undo log and indexes


def snapshot(s: OdooStandin) -> dict[str, Any]:
    """Every table (rows and iteration order), counters, sequences and effects, by value."""
    db = s.dispatcher.database
    return {
        "tables": {m: [(i, dict(r)) for i, r in db.tables[m].items()] for m in db.schema},
        "next_ids": dict(db.next_ids),
        "sequences": dict(db.sequences),
        "effects": [e.to_dict() for e in s.effects()],
    }


def order_with_lines(odoo: Any, ref: str, partner: int = 7) -> int:
    lines = [(0, 0, {"product_id": 4, "product_uom_qty": 2}), (0, 0, {"product_id": 5})]
    return int(
        odoo.execute_kw("sale.order", "create", [{"partner_id": partner, "client_order_ref": ref, "order_line": lines}])
    )


def test_failed_multi_create_leaves_no_trace(standin: OdooStandin, odoo: Any) -> None:
    order_with_lines(odoo, "KEEP")
    before = snapshot(standin)
    vals = [
        {"partner_id": 7, "client_order_ref": "GONE", "order_line": [(0, 0, {"product_id": 4})]},
        {"partner_id": 8, "client_order_ref": "GONE-2"},
        {"client_order_ref": "no partner"},  # fails after two orders and a line were inserted
    ]
    with pytest.raises(odoorpc.error.RPCError, match="Missing required fields on sale.order"):
        odoo.execute_kw("sale.order", "create", [vals])
    assert snapshot(standin) == before
    # nothing stale in the indexes either
    assert odoo.execute_kw("sale.order", "search", [[("client_order_ref", "in", ["GONE", "GONE-2"])]]) == []
    assert odoo.execute_kw("sale.order", "search", [[("name", "=like", "S%")]]) == [1]
    assert odoo.execute_kw("sale.order.line", "search", [[("order_id", "=", 2)]]) == []
    # ids and the sale.order sequence were not consumed
    new_id = order_with_lines(odoo, "NEXT")
    [order] = odoo.execute_kw("sale.order", "read", [[new_id]], {"fields": ["name", "order_line"]})
    assert order == {"id": 2, "name": "S00002", "order_line": [3, 4]}
    assert [e.ids for e in standin.effects()] == [[1], [2]]


def test_failed_write_leaves_no_trace(standin: OdooStandin, odoo: Any) -> None:
    order_id = order_with_lines(odoo, "OLD-REF")
    order_with_lines(odoo, "OTHER")
    before = snapshot(standin)
    commands = [
        (1, 1, {"product_uom_qty": 9}),  # change a line
        (2, 2),  # delete a line (re-inserted in place on rollback)
        (0, 0, {"product_id": 6}),  # add a line
        (1, 999, {"product_uom_qty": 1}),  # MissingError: the whole write is undone
    ]
    with pytest.raises(odoorpc.error.RPCError, match="Record does not exist") as exc:
        odoo.execute_kw("sale.order", "write", [[order_id], {"client_order_ref": "NEW-REF", "order_line": commands}])
    assert rpc_error_name(exc) == "odoo.exceptions.MissingError"
    assert snapshot(standin) == before
    assert odoo.execute_kw("sale.order", "search", [[("client_order_ref", "=", "NEW-REF")]]) == []
    assert odoo.execute_kw("sale.order", "search", [[("client_order_ref", "=", "OLD-REF")]]) == [order_id]
    assert odoo.execute_kw("sale.order.line", "search", [[("order_id", "=", order_id)]]) == [1, 2]
    # the same write without the bad command goes through, then a failing write on partners
    odoo.execute_kw("sale.order", "write", [[order_id], {"client_order_ref": "NEW-REF", "order_line": commands[:3]}])
    assert odoo.execute_kw("sale.order", "search", [[("client_order_ref", "=", "NEW-REF")]]) == [order_id]
    assert odoo.execute_kw("sale.order", "read", [[order_id]], {"fields": ["order_line"]})[0]["order_line"] == [1, 5]
    before = snapshot(standin)
    with pytest.raises(odoorpc.error.RPCError, match="Record does not exist"):
        odoo.execute_kw("res.partner", "write", [[8, 999], {"name": "Renamed"}])
    with pytest.raises(odoorpc.error.RPCError, match="Missing required fields"):
        odoo.execute_kw("sale.order", "write", [[order_id], {"client_order_ref": "X", "partner_id": False}])
    assert snapshot(standin) == before


def test_failed_inventory_apply_and_nested_savepoints(standin: OdooStandin, odoo: Any) -> None:
    quant = odoo.execute_kw(
        "stock.quant",
        "create",
        [{"product_id": 1, "location_id": 8, "inventory_quantity": 5}],
        {"context": INV_CTX},
    )
    before = snapshot(standin)
    db = standin.dispatcher.database

    def apply_then_fail() -> None:
        odoo_env = Env(db, 2, {"inventory_name": "GW-x"})
        call(odoo_env, "stock.quant", "action_apply_inventory", [[quant]], {})
        assert len(db.tables["stock.move"]) == 1 and db.tables["stock.quant"][quant]["quantity"] == 5.0
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        standin.dispatcher.transaction(apply_then_fail)
    assert snapshot(standin) == before

    # an inner transaction is a savepoint: undone alone, kept if the outer one commits
    with db.transaction():
        db.insert("res.partner", {"name": "Outer"})
        with pytest.raises(RuntimeError), db.transaction():
            db.tables["res.partner"][8]["name"] = "Inner"
            db.insert("res.partner", {"name": "Inner new"})
            raise RuntimeError("inner")
        db.tables["res.partner"][7]["name"] = "Outer rename"
    names = {r["name"] for r in standin.records("res.partner")}
    assert {"Outer", "Outer rename", "Second Customer"} <= names and "Inner new" not in names
    assert odoo.execute_kw("res.partner", "search", [[("name", "=", "Inner")]]) == []
    assert odoo.execute_kw("res.partner", "search", [[("name", "=", "Outer rename")]]) == [7]


def test_index_gives_the_scan_results(standin: OdooStandin, odoo: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    refs = [f"GW-{n}-{uuid.uuid4()}" for n in range(6)]
    for n, ref in enumerate(refs):
        order_with_lines(odoo, ref, partner=7 if n % 2 else 8)
    odoo.execute_kw("sale.order", "create", [{"partner_id": 7}])  # no client_order_ref
    odoo.execute_kw("product.product", "write", [[5], {"active": False}])
    for product in (1, 2):
        quant = odoo.execute_kw(
            "stock.quant",
            "create",
            [{"product_id": product, "location_id": 8, "inventory_quantity": 3}],
            {"context": {**INV_CTX, "inventory_name": f"{refs[product]}"}},
        )
        odoo.execute_kw(
            "stock.quant", "action_apply_inventory", [[quant]], {"context": {"inventory_name": refs[product]}}
        )
    cases: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("sale.order", [("client_order_ref", "=", refs[3])], {}),
        ("sale.order", [("client_order_ref", "in", [refs[1], refs[4], "nope"])], {"order": "name asc"}),
        ("sale.order", ["|", ("client_order_ref", "=", refs[0]), ("name", "=", "S00005")], {}),
        ("sale.order", ["!", ("client_order_ref", "=", refs[0])], {"limit": 3, "offset": 1}),
        ("sale.order", [("client_order_ref", "=", False)], {}),
        ("sale.order", [("client_order_ref", "!=", refs[2])], {}),
        ("sale.order", [("name", "=like", "S0000_")], {"order": "name desc"}),
        ("sale.order", [("client_order_ref", "=like", "GW-1%"), ("partner_id", "=", 7)], {}),
        ("sale.order", [("client_order_ref", "=like", "GW-%"), ("partner_id", "in", [8, 99])], {}),
        ("sale.order", [("partner_id", "=", "Demo Customer")], {}),
        ("sale.order", [("id", "in", [1, 3, 999]), ("partner_id", "=", 8)], {}),
        ("sale.order", [("order_line.product_id", "=", 4), ("client_order_ref", "in", refs[:3])], {}),
        ("sale.order", ["&", ("client_order_ref", "in", []), ("name", "=", "S00001")], {}),
        ("sale.order", [], {"order": "amount_total desc, id"}),
        ("sale.order.line", [("order_id", "in", [2, 4]), ("product_id", "=", 5)], {}),
        ("product.product", [("default_code", "in", ["DEMO-001", "DEMO-005", "SERVICE-001"])], {}),
        ("product.product", [("default_code", "in", ["DEMO-005"]), ("active", "in", [True, False])], {}),
        ("product.product", [("default_code", "=like", "DEMO-01%")], {"order": "default_code desc"}),
        ("res.partner", [("name", "=", "Demo Customer")], {}),
        ("stock.move", [("is_inventory", "=", True), ("name", "=like", f"{refs[1]}%")], {}),
        ("stock.move", [("is_inventory", "=", True), ("name", "=like", "GW-%")], {}),
        ("stock.location", [("complete_name", "=", "WH/Stock")], {}),
        ("stock.quant", [("product_id", "=", 2), ("location_id", "=", 8)], {}),
    ]
    indexed = [odoo.execute_kw(model, "search", [domain], kw) for model, domain, kw in cases]
    env = Env(standin.dispatcher.database, 2, {})
    narrowed = [orm._domain_ids(env, model, domain) for model, domain, _ in cases]
    assert narrowed[0] == {4} and narrowed[1] == {2, 5} and narrowed[2] == {1, 5} and narrowed[12] == set()
    assert narrowed[6] == {1, 2, 3, 4, 5, 6, 7} and narrowed[19] == set(indexed[19])  # =like prefixes
    assert narrowed[3] is None and narrowed[9] is None  # "!" and many2one-by-name: full scan
    monkeypatch.setattr(orm, "_checked", lambda env, model, domain: False)  # always scan
    scanned = [odoo.execute_kw(model, "search", [domain], kw) for model, domain, kw in cases]
    assert indexed == scanned
    assert indexed[0] == [4] and indexed[2] == [5, 1] and indexed[12] == []
    assert len(indexed[19]) == 1 and len(indexed[20]) == 2


def test_indexed_search_still_rejects_bad_domains(odoo: Any) -> None:
    order_with_lines(odoo, "R")
    with pytest.raises(odoorpc.error.RPCError, match="Invalid field 'bogus'") as exc:
        odoo.execute_kw("sale.order", "search", [[("client_order_ref", "=", "nope"), ("bogus", "=", 1)]])
    assert rpc_error_name(exc) == "builtins.ValueError"
    with pytest.raises(odoorpc.error.RPCError, match="missing operand") as exc:
        odoo.execute_kw("sale.order", "search", [["&", ("client_order_ref", "=", "nope")]])
    assert rpc_error_name(exc) == "builtins.ValueError"
    with pytest.raises(odoorpc.error.RPCError, match="Invalid leaf"):
        odoo.execute_kw("sale.order", "search", [[("client_order_ref", "~", "R"), ("id", "=", 1)]])


def test_field_index_buckets_and_prefixes() -> None:
    index = FieldIndex(prefix=True)
    for rec_id, value in [(1, "GW-a"), (2, "GW-b"), (3, "GW-a"), (4, False), (5, "GX")]:
        index.add(value, rec_id)
    assert index.equal("GW-a") == {1, 3} and index.equal("GW-b") == {2} and index.equal("nope") == set()
    assert index.prefixed("GW-") == {1, 2, 3} and index.prefixed("G") == {1, 2, 3, 5}
    index.discard("GW-a", 1)
    index.discard("GW-b", 2)
    index.discard("GW-b", 2)  # already gone: no-op
    assert index.equal("GW-a") == {3} and index.keys == ["GW-a", "GX"]
    assert index.prefixed("GW-") == {3}
    index.add(7, 6)  # a non-string value in a string field: prefix search is off from now on
    assert index.prefixed("G") is None and index.equal(7) == {6}
    with pytest.raises(TypeError):
        index.add(["unhashable"], 8)


def test_stored_rows_copy_as_plain_dicts_and_unindexable_values(standin: OdooStandin, odoo: Any) -> None:
    db = standin.dispatcher.database
    row = db.tables["res.partner"][7]
    assert type(copy.deepcopy(row)) is dict and copy.deepcopy(row) == dict(row)
    assert type(copy.copy(row)) is dict and type(db.tables["res.partner"].copy()) is dict
    assert all(type(r) is dict for r in standin.records("res.partner"))
    with db.transaction():
        row["ref"] = ["not", "hashable"]  # the ref index is dropped: searches scan instead
    assert db.index("res.partner", "ref") is None
    assert odoo.execute_kw("res.partner", "search", [[("ref", "=", "DEMO-C1")]]) == []
    row["ref"] = "DEMO-C1"
    assert odoo.execute_kw("res.partner", "search", [[("ref", "=", "DEMO-C1")]]) == [7]
    standin.reset()
    assert db.index("res.partner", "ref") is not None
