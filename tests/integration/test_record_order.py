"""Guarantees 9 and 10 on whole running systems (real RabbitMQ, both stores): counts of the
same product take effect one at a time, in acceptance order, each under its own reference;
waiting is visible; a message for a task the store does not know is never applied.

Effects are read from Odoo's side (the stand-in's stock moves and quants, by reference),
never from what the workers report.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import httpx
import pika

from shared.names import TASK_ACTOR, TASK_QUEUE
from shared.store import open_store
from tests.odoo_standin import FaultRule
from tests.support.services import queue_counts
from tests.support.stack import Stack, wait_for

from .test_faults import events


def count_payload(product: str, quantity: float) -> dict[str, Any]:
    return {"location": "WH/Stock", "lines": [{"product": product, "quantity": quantity}]}


async def submit_count(http: httpx.AsyncClient, stack: Stack, product: str, quantity: float) -> str:
    response = await http.post(
        "/v1/tasks",
        headers=stack.headers(key=str(uuid.uuid4())),
        json={"kind": "inventory.adjust", "payload": count_payload(product, quantity)},
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def stock(stack: Stack, product: str) -> float:
    product_id = next(p["id"] for p in stack.standin.records("product.product") if p.get("default_code") == product)
    location_id = next(
        loc["id"] for loc in stack.standin.records("stock.location") if loc.get("complete_name") == "WH/Stock"
    )
    return sum(
        float(q["quantity"])
        for q in stack.standin.records("stock.quant")
        if q["product_id"] == product_id and q["location_id"] == location_id
    )


def moves(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    return [m for m in stack.standin.records("stock.move") if str(m.get("name", "")).startswith(f"GW-{task_id}")]


def signed(move: dict[str, Any], location_id: int) -> float:
    quantity = float(move["product_uom_qty"])
    return quantity if move["location_dest_id"] == location_id else -quantity


def accept_orders(stack: Stack, task_ids: list[str]) -> list[str]:
    """The task ids in acceptance order, as the task store holds it."""
    store = open_store(stack.env["DATABASE_URL"])
    try:
        records = [store.get(task_id) for task_id in task_ids]
    finally:
        store.close()
    assert all(r is not None for r in records)
    return [r.id for r in sorted(records, key=lambda r: r.accept_order)]  # type: ignore[union-attr]


def assert_counts_applied_in_order(stack: Stack, product: str, before: float, counts: dict[str, float]) -> None:
    """Replaying Odoo's moves in acceptance order: each task has exactly one move, under its
    own reference, that takes the stock from the previous count to its own count."""
    location_id = next(
        loc["id"] for loc in stack.standin.records("stock.location") if loc.get("complete_name") == "WH/Stock"
    )
    level = before
    for task_id in accept_orders(stack, list(counts)):
        own = moves(stack, task_id)
        assert len(own) == 1, (task_id, own)
        level += signed(own[0], location_id)
        assert abs(level - counts[task_id]) < 1e-6, (task_id, level, counts[task_id])
    last = accept_orders(stack, list(counts))[-1]
    assert stock(stack, product) == counts[last]


async def test_fifty_concurrent_counts_of_one_product_from_ten_clients(stack: Stack) -> None:
    product = "DEMO-007"
    before = stock(stack, product)
    counts: dict[str, float] = {}

    async def client(index: int) -> None:
        async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
            for n in range(5):
                quantity = float(100 + index * 5 + n)  # all different: every count moves stock
                counts[await submit_count(http, stack, product, quantity)] = quantity

    await asyncio.gather(*(client(i) for i in range(10)))
    finals = [await asyncio.to_thread(stack.wait_final, task_id, 120.0) for task_id in counts]
    assert all(f["status"] == "succeeded" for f in finals), [f for f in finals if f["status"] != "succeeded"]
    assert_counts_applied_in_order(stack, product, before, counts)


async def test_a_queued_task_says_so_and_starts_within_a_second_of_its_blocker_ending(stack: Stack) -> None:
    product = "DEMO-008"
    before = stock(stack, product)
    stack.standin.add_fault(FaultRule(kind="delay", model="stock.quant", method="action_apply_inventory", seconds=1.5))
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        older = await submit_count(http, stack, product, before + 3)
        newer = await submit_count(http, stack, product, before + 5)
        wait_for(lambda: any(e["status"] == "waiting" for e in events(stack, newer)), 30, "the newer count to queue")
        queued = (await http.get(f"/v1/tasks/{newer}", headers=stack.headers())).json()
    assert queued["status"] == "waiting" and queued["error"]["code"] == "queued"
    assert queued["error"]["blocked_by"] == older
    await asyncio.to_thread(stack.wait_final, newer, 60.0)
    ended = next(e for e in events(stack, older) if e["status"] == "succeeded")
    started = next(e for e in events(stack, newer) if e["status"] == "running")
    assert 0 <= started["at"] - ended["at"] < 1.0, (ended, started)
    assert [e["status"] for e in events(stack, newer)] == ["waiting", "running", "succeeded"]
    assert_counts_applied_in_order(stack, product, before, {older: before + 3, newer: before + 5})


async def test_an_older_count_retrying_is_not_overtaken_by_a_newer_one(stack: Stack) -> None:
    product = "DEMO-009"
    before = stock(stack, product)
    stack.standin.add_fault(
        FaultRule(kind="http_status", status=503, model="stock.quant", method="action_apply_inventory")
    )
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        older = await submit_count(http, stack, product, before + 10)
        wait_for(lambda: any(e["status"] == "retrying" for e in events(stack, older)), 30, "the older count to retry")
        newer = await submit_count(http, stack, product, before + 20)
    final_older = await asyncio.to_thread(stack.wait_final, older, 60.0)
    final_newer = await asyncio.to_thread(stack.wait_final, newer, 60.0)
    assert final_older["status"] == final_newer["status"] == "succeeded"
    assert final_older["attempts"] == 2 and final_newer["attempts"] == 1
    assert [e["status"] for e in events(stack, newer)][0] == "waiting"
    assert_counts_applied_in_order(stack, product, before, {older: before + 10, newer: before + 20})


async def test_worker_sigkilled_while_holding_a_record(pg_stack: Stack) -> None:
    stack, product = pg_stack, "DEMO-010"
    before = stock(stack, product)
    # The older count commits in Odoo, then its reply takes 3 s: the worker dies meanwhile,
    # still holding the record. The newer count must wait for it across the restart.
    stack.standin.add_fault(
        FaultRule(kind="delay", model="stock.quant", method="action_apply_inventory", seconds=3, phase="after")
    )
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        older = await submit_count(http, stack, product, before + 7)
        newer = await submit_count(http, stack, product, before + 2)
    wait_for(lambda: any(e["status"] == "waiting" for e in events(stack, newer)), 30, "the newer count to queue")
    time.sleep(0.5)
    stack.kill_worker_child()
    wait_for(lambda: not stack.worker.alive(), 30, "the dramatiq master to exit")
    stack.restart_worker()
    final_older = await asyncio.to_thread(stack.wait_final, older, 60.0)
    final_newer = await asyncio.to_thread(stack.wait_final, newer, 60.0)
    assert final_older["status"] == final_newer["status"] == "succeeded", stack.logs()
    assert final_older["result"].get("already_applied") is True  # found, not applied twice
    assert_counts_applied_in_order(stack, product, before, {older: before + 7, newer: before + 2})


async def test_a_message_for_an_unknown_task_is_dead_lettered_and_never_applied(stack: Stack) -> None:
    task_id = str(uuid.uuid4())
    payload = count_payload("DEMO-006", 12345)
    body = {
        "queue_name": TASK_QUEUE,
        "actor_name": TASK_ACTOR,
        "args": [task_id, "inventory.adjust", payload],
        "kwargs": {},
        "options": {},
        "message_id": task_id,
        "message_timestamp": int(time.time() * 1000),
    }
    dead_before = queue_counts(stack.env["AMQP_URL"], f"{TASK_QUEUE}.XQ")[0]
    connection = pika.BlockingConnection(pika.URLParameters(stack.env["AMQP_URL"]))
    try:
        connection.channel().basic_publish(
            "", TASK_QUEUE, json.dumps(body).encode(), pika.BasicProperties(delivery_mode=2)
        )
    finally:
        connection.close()
    wait_for(
        lambda: queue_counts(stack.env["AMQP_URL"], f"{TASK_QUEUE}.XQ")[0] > dead_before,
        30,
        "the forged message to be dead-lettered",
    )
    assert f"anomaly unknown_task task={task_id}" in stack.worker.log()
    assert moves(stack, task_id) == []
    assert all(e.values != payload for e in stack.standin.effects())
