"""Resume is gap-free, on any gateway instance, and never reveals another tenant's task."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx

from tests.odoo_standin import FaultRule
from tests.support.stack import Stack

from .test_roundtrip import SALE, recv_json, recv_until_final, send_sale, ws_connect


async def test_disconnect_after_accepted_then_resume_on_other_instance(pg_stack: Stack) -> None:
    stack = pg_stack
    # Slow the write so the task is still running when the client drops.
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=0.5))
    async with await ws_connect(stack.ws_of(0)) as ws:
        await send_sale(ws)
        accepted = await recv_json(ws)
        assert accepted["type"] == "accepted"
    task_id = accepted["task_id"]
    await asyncio.to_thread(stack.wait_final, task_id)
    async with await ws_connect(stack.ws_of(1)) as ws:
        await ws.send(json.dumps({"type": "resume", "ref": "r1", "tasks": {task_id: 0}}))
        resumed = await recv_json(ws)
        assert resumed == {
            "type": "resumed",
            "ref": "r1",
            "unknown": [],
            "tasks": {task_id: {"status": "succeeded", "seq": 4, "recovered": True}},
        }
        missed = await recv_until_final(ws, task_id)
        assert [(e["seq"], e["status"]) for e in missed] == [(2, "running"), (4, "succeeded")]
        # Nothing is sent twice: a ping now is answered by a pong, not a stray event.
        await ws.send(json.dumps({"type": "ping", "ref": "p"}))
        assert await recv_json(ws, 5) == {"type": "pong", "ref": "p"}
        # Resuming from the last seq seen sends nothing more.
        await ws.send(json.dumps({"type": "resume", "ref": "r2", "tasks": {task_id: 4}}))
        assert (await recv_json(ws))["type"] == "resumed"
        await ws.send(json.dumps({"type": "ping", "ref": "p2"}))
        assert await recv_json(ws, 5) == {"type": "pong", "ref": "p2"}


async def test_resume_mid_flight_gets_missed_then_live_events(pg_stack: Stack) -> None:
    stack = pg_stack
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=1.5))
    async with await ws_connect(stack.ws_of(0)) as ws:
        await send_sale(ws)
        task_id = (await recv_json(ws))["task_id"]
    async with await ws_connect(stack.ws_of(1)) as ws:
        await ws.send(json.dumps({"type": "resume", "ref": "r", "tasks": {task_id: 0}}))
        assert (await recv_json(ws))["type"] == "resumed"
        events = await recv_until_final(ws, task_id)
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})
    assert events[-1]["status"] == "succeeded" and events[-1]["seq"] == 4


async def test_other_tenants_task_is_unknown_like_a_missing_one(pg_stack: Stack) -> None:
    stack = pg_stack
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        response = await http.post(
            "/v1/tasks",
            headers=stack.headers("demo", str(uuid.uuid4())),
            json={"kind": "sale.order.create", "payload": SALE},
        )
        task_id = response.json()["task_id"]
        theirs = await http.get(f"/v1/tasks/{task_id}", headers=stack.headers("other"))
        missing = await http.get(f"/v1/tasks/{uuid.uuid4()}", headers=stack.headers("other"))
        theirs_events = await http.get(f"/v1/tasks/{task_id}/events", headers=stack.headers("other"))
    assert theirs.status_code == missing.status_code == theirs_events.status_code == 404
    assert theirs.json() == missing.json()
    ghost = str(uuid.uuid4())
    async with await ws_connect(stack.ws, principal="other") as ws:
        await ws.send(json.dumps({"type": "resume", "ref": "x", "tasks": {task_id: 0, ghost: 0}}))
        frame = await recv_json(ws)
        assert frame == {"type": "resumed", "ref": "x", "tasks": {}, "unknown": [task_id, ghost]}
        await ws.send(json.dumps({"type": "ping", "ref": "p"}))
        assert await recv_json(ws, 5) == {"type": "pong", "ref": "p"}  # no event leaked


async def test_http_polling_sees_the_same_history(pg_stack: Stack) -> None:
    stack = pg_stack
    async with httpx.AsyncClient(base_url=stack.gateways[0][1], timeout=30) as http:
        response = await http.post(
            "/v1/tasks",
            headers=stack.headers("demo", str(uuid.uuid4())),
            json={"kind": "sale.order.create", "payload": SALE},
        )
    task_id = response.json()["task_id"]
    await asyncio.to_thread(stack.wait_final, task_id)
    async with httpx.AsyncClient(base_url=stack.gateways[1][1], timeout=30) as http:
        after_one = (await http.get(f"/v1/tasks/{task_id}/events?after=2", headers=stack.headers())).json()
        bad = await http.get(f"/v1/tasks/{task_id}/events?after=-3", headers=stack.headers())
    assert [e["seq"] for e in after_one["events"]] == [4]
    assert after_one["history_pruned"] is False
    assert bad.status_code == 400


async def test_a_task_watched_on_two_instances_reaches_both_live(pg_stack: Stack) -> None:
    """Either instance's relay may take the task's events from the shared queue: the socket
    on the other instance gets them only through the relay's live announcement."""
    stack = pg_stack
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=1.0))
    async with await ws_connect(stack.ws_of(0)) as first, await ws_connect(stack.ws_of(1)) as second:
        await send_sale(first)
        accepted = await recv_json(first)
        task_id = accepted["task_id"]
        await second.send(json.dumps({"type": "resume", "ref": "r", "tasks": {task_id: 0}}))
        resumed = await recv_json(second)
        assert resumed["type"] == "resumed" and resumed["tasks"][task_id]["status"] != "succeeded"
        on_first, on_second = await asyncio.gather(recv_until_final(first, task_id), recv_until_final(second, task_id))
    assert on_first[-1]["status"] == on_second[-1]["status"] == "succeeded"
    assert on_first[-1]["seq"] == on_second[-1]["seq"] == 4
