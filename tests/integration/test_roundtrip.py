"""The spine, end to end on real processes: submit over HTTP or WebSocket -> RabbitMQ ->
Dramatiq -> Odoo stand-in -> event pushed back, on both task stores."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest
import websockets

from tests.support.stack import TOKENS, Stack

SALE = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}


def orders_for(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    return [o for o in stack.standin.records("sale.order") if o.get("client_order_ref") == f"GW-{task_id}"]


def inventory_moves_for(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    return [m for m in stack.standin.records("stock.move") if str(m.get("name", "")).startswith(f"GW-{task_id}")]


async def ws_connect(url: str, principal: str = "demo", **kwargs: Any) -> Any:
    return await websockets.connect(url, additional_headers={"Authorization": f"Bearer {TOKENS[principal]}"}, **kwargs)


async def send_sale(ws: Any, key: str | None = None, ref: str = "s") -> None:
    """A ``submit`` frame for the SALE payload (a new idempotency key unless given)."""
    frame = {"type": "submit", "ref": ref, "idempotency_key": key or str(uuid.uuid4()), "kind": "sale.order.create"}
    await ws.send(json.dumps({**frame, "payload": SALE}))


async def recv_json(ws: Any, timeout: float = 30.0) -> dict[str, Any]:
    frame: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
    return frame


async def recv_until_final(ws: Any, task_id: str, timeout: float = 60.0) -> list[dict[str, Any]]:
    events = []
    while True:
        frame = await recv_json(ws, timeout)
        if frame.get("type") == "event" and frame["task_id"] == task_id:
            events.append(frame)
            if frame["status"] in ("succeeded", "failed"):
                return events


async def test_http_round_trip(stack: Stack) -> None:
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        response = await http.post(
            "/v1/tasks", headers=stack.headers(key=key), json={"kind": "sale.order.create", "payload": SALE}
        )
        assert response.status_code == 202, response.text
        body = response.json()
        task_id = body["task_id"]
        assert body["status"] == "accepted" and body["duplicate"] is False
        assert response.headers["location"] == f"/v1/tasks/{task_id}"
        assert response.headers["retry-after"] == "1"
    final = await asyncio.to_thread(stack.wait_final, task_id)
    assert final["status"] == "succeeded", final
    assert final["attempts"] == 1
    orders = orders_for(stack, task_id)
    assert len(orders) == 1
    assert final["result"]["sale_order_id"] == orders[0]["id"]
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        events = (await http.get(f"/v1/tasks/{task_id}/events?after=0", headers=stack.headers())).json()
    assert [(e["seq"], e["status"]) for e in events["events"]] == [(2, "running"), (4, "succeeded")]


async def test_ws_round_trip_pushes_final_event(stack: Stack) -> None:
    counted = 100 + uuid.uuid4().int % 900  # differs from the current quantity: one move
    payload = {"location": "WH/Stock", "lines": [{"product": "DEMO-002", "quantity": counted}]}
    async with await ws_connect(stack.ws) as ws:
        key = str(uuid.uuid4())
        await ws.send(
            json.dumps(
                {
                    "type": "submit",
                    "ref": "s1",
                    "idempotency_key": key,
                    "kind": "inventory.adjust",
                    "payload": payload,
                }
            )
        )
        accepted = await recv_json(ws)
        assert accepted["type"] == "accepted" and accepted["ref"] == "s1" and accepted["seq"] == 0
        events = await recv_until_final(ws, accepted["task_id"])
    assert [e["status"] for e in events] == ["running", "succeeded"]
    assert [e["seq"] for e in events] == [2, 4]
    moves = inventory_moves_for(stack, accepted["task_id"])
    assert len(moves) == 1
    assert events[-1]["result"]["move_ids"] == [moves[0]["id"]]
    quants = [q for q in stack.standin.records("stock.quant") if q["id"] in events[-1]["result"]["quant_ids"]]
    assert len(quants) == 1 and quants[0]["quantity"] == counted


async def test_same_submission_five_times_http_and_ws_concurrently_is_one_task(stack: Stack) -> None:
    key = str(uuid.uuid4())
    payload = {"customer": "Demo Customer", "lines": [{"product": "DEMO-003", "quantity": 1}]}
    body = {"kind": "sale.order.create", "payload": payload}

    async def over_http(http: httpx.AsyncClient) -> str:
        response = await http.post("/v1/tasks", headers=stack.headers(key=key), json=body)
        assert response.status_code == 202, response.text
        task_id: str = response.json()["task_id"]
        return task_id

    async def over_ws(ref: str) -> str:
        async with await ws_connect(stack.ws) as ws:
            await ws.send(json.dumps({"type": "submit", "ref": ref, "idempotency_key": key, **body}))
            frame = await recv_json(ws)
            assert frame["type"] == "accepted", frame
            task_id: str = frame["task_id"]
            return task_id

    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        ids = await asyncio.gather(*(over_http(http) for _ in range(5)), *(over_ws(f"w{i}") for i in range(5)))
        # And five more, one after the other, after the first ones finished.
        ids += [await over_http(http) for _ in range(5)]
    assert len(set(ids)) == 1
    final = await asyncio.to_thread(stack.wait_final, ids[0])
    assert final["status"] == "succeeded"
    await asyncio.sleep(1.0)  # any stray duplicate message would have been applied by now
    assert len(orders_for(stack, ids[0])) == 1


async def test_same_key_different_payload_is_422(stack: Stack) -> None:
    key = str(uuid.uuid4())
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        first = await http.post(
            "/v1/tasks", headers=stack.headers(key=key), json={"kind": "sale.order.create", "payload": SALE}
        )
        assert first.status_code == 202
        other = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 3}]}
        second = await http.post(
            "/v1/tasks", headers=stack.headers(key=key), json={"kind": "sale.order.create", "payload": other}
        )
    assert second.status_code == 422
    assert second.json()["error"]["code"] == "idempotency_key_reused"
    async with await ws_connect(stack.ws) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "submit",
                    "ref": 9,
                    "idempotency_key": key,
                    "kind": "sale.order.create",
                    "payload": other,
                }
            )
        )
        frame = await recv_json(ws)
    assert frame == {**frame, "type": "error", "ref": 9, "code": "idempotency_key_reused"}


async def test_same_key_is_per_principal(stack: Stack) -> None:
    key = str(uuid.uuid4())
    body = {"kind": "sale.order.create", "payload": SALE}
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        mine = await http.post("/v1/tasks", headers=stack.headers("demo", key), json=body)
        theirs = await http.post("/v1/tasks", headers=stack.headers("other", key), json=body)
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["task_id"] != theirs.json()["task_id"]


@pytest.mark.parametrize(
    ("kind", "payload", "code", "named"),
    [
        (
            "sale.order.create",
            {"customer": "Nobody Known", "lines": [{"product": "DEMO-001", "quantity": 1}]},
            "unknown_customer",
            "Nobody Known",
        ),
        (
            "inventory.adjust",
            {"location": "WH/Stock", "lines": [{"product": "NOPE-1", "quantity": 1}]},
            "unknown_product",
            "NOPE-1",
        ),
        (
            "inventory.adjust",
            {"location": "WH/Nowhere", "lines": [{"product": "DEMO-001", "quantity": 1}]},
            "unknown_location",
            "WH/Nowhere",
        ),
    ],
)
async def test_unknown_odoo_references_fail_at_once_with_the_reason(
    stack: Stack, kind: str, payload: dict[str, Any], code: str, named: str
) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        response = await http.post(
            "/v1/tasks", headers=stack.headers(key=str(uuid.uuid4())), json={"kind": kind, "payload": payload}
        )
    final = await asyncio.to_thread(stack.wait_final, response.json()["task_id"])
    assert final["status"] == "failed"
    assert final["error"]["code"] == code and named in final["error"]["message"]
    assert final["attempts"] == 1
