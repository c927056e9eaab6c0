"""Guarantees under Odoo faults and a worker killed mid-write: every task ends in a final
state the client can see, with exactly one effect in Odoo."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import httpx

from tests.odoo_standin import FaultRule
from tests.support.stack import Stack, wait_for

from .test_roundtrip import orders_for


async def submit_sale(stack: Stack, product: str = "DEMO-004") -> str:
    payload = {"customer": "Demo Customer", "lines": [{"product": product, "quantity": 1}]}
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        response = await http.post(
            "/v1/tasks",
            headers=stack.headers(key=str(uuid.uuid4())),
            json={"kind": "sale.order.create", "payload": payload},
        )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def created_order_effects(stack: Stack, task_id: str) -> int:
    """Committed sale.order.create calls carrying this task's reference."""
    count = 0
    for effect in stack.standin.effects(model="sale.order", method="create"):
        values = effect.values if isinstance(effect.values, list) else [effect.values]
        count += sum(1 for v in values if isinstance(v, dict) and v.get("client_order_ref") == f"GW-{task_id}")
    return count


def events(stack: Stack, task_id: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{stack.base}/v1/tasks/{task_id}/events", headers=stack.headers(), timeout=10)
    result: list[dict[str, Any]] = response.json()["events"]
    return result


async def test_transient_error_is_retried_then_succeeds(stack: Stack) -> None:
    stack.standin.add_fault(
        FaultRule(
            kind="error",
            model="sale.order",
            method="create",
            times=2,
            error_name="psycopg2.errors.SerializationFailure",
            message="could not serialize access",
        )
    )
    task_id = await submit_sale(stack)
    final = await asyncio.to_thread(stack.wait_final, task_id)
    assert final["status"] == "succeeded", final
    assert final["attempts"] == 3
    statuses = [e["status"] for e in events(stack, task_id)]
    assert statuses == ["running", "retrying", "running", "retrying", "running", "succeeded"]
    assert len(orders_for(stack, task_id)) == 1
    assert created_order_effects(stack, task_id) == 1


async def test_http_503_from_odoo_is_retried(stack: Stack) -> None:
    stack.standin.add_fault(FaultRule(kind="http_status", model="sale.order", method="create", status=503))
    task_id = await submit_sale(stack)
    final = await asyncio.to_thread(stack.wait_final, task_id)
    assert final["status"] == "succeeded" and final["attempts"] == 2
    assert len(orders_for(stack, task_id)) == 1


async def test_commit_then_lose_the_response_applies_once(stack: Stack) -> None:
    stack.standin.add_fault(FaultRule(kind="commit_then_drop", model="sale.order", method="create"))
    task_id = await submit_sale(stack)
    final = await asyncio.to_thread(stack.wait_final, task_id)
    assert final["status"] == "succeeded", final
    # The reset was ambiguous; the worker found the order it had created, in the same attempt.
    assert final["result"]["sale_order_id"] == orders_for(stack, task_id)[0]["id"]
    assert final["attempts"] == 1
    assert created_order_effects(stack, task_id) == 1


async def test_502_after_commit_is_resolved_by_lookup(stack: Stack) -> None:
    # A proxy's 502 while Odoo commits: simulated as commit, then a 502 on the lookup's
    # first call would be too lenient; here the write itself answers 502 without running,
    # which the worker must treat as ambiguous: look up (nothing), then retry.
    stack.standin.add_fault(FaultRule(kind="http_status", model="sale.order", method="create", status=502))
    task_id = await submit_sale(stack)
    final = await asyncio.to_thread(stack.wait_final, task_id)
    assert final["status"] == "succeeded" and final["attempts"] == 2
    assert len(orders_for(stack, task_id)) == 1


async def test_exhausted_retries_fail_and_dead_letter(stack: Stack) -> None:
    stack.standin.add_fault(FaultRule(kind="http_status", model="sale.order", method="create", status=503, times=-1))
    try:
        task_id = await submit_sale(stack)
        final = await asyncio.to_thread(stack.wait_final, task_id, 90.0)
    finally:
        stack.standin.clear_faults()
    assert final["status"] == "failed"
    assert final["attempts"] == 5
    assert "Gave up after 5 attempts" in final["error"]["message"]
    assert orders_for(stack, task_id) == []


async def test_worker_sigkilled_mid_write_ends_succeeded_once(pg_stack: Stack) -> None:
    stack = pg_stack
    # The write sits in Odoo for 1.5 s before it commits; the worker dies meanwhile.
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=1.5))
    task_id = await submit_sale(stack, "DEMO-005")
    wait_for(lambda: any(e["status"] == "running" for e in events(stack, task_id)), 30, "the attempt to start")
    time.sleep(0.5)  # lookups done; the create is now inside Odoo's delay
    stack.kill_worker_child()
    # The Dramatiq master notices and exits; a supervisor restarts it, as in production.
    wait_for(lambda: not stack.worker.alive(), 30, "the dramatiq master to exit")
    stack.restart_worker()
    final = await asyncio.to_thread(stack.wait_final, task_id, 60.0)
    assert final["status"] == "succeeded", stack.logs()
    assert len(orders_for(stack, task_id)) == 1
    assert created_order_effects(stack, task_id) == 1
    assert final["result"].get("already_applied") is True
