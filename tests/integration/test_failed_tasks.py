"""Operators retry failed tasks: listed per tenant, reopened once, run again as the next
attempt, seen by the client's socket, and applied to Odoo exactly once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from typing import Any

import httpx

from tests.odoo_standin import FaultRule
from tests.support.processes import ROOT
from tests.support.stack import ADMIN_TOKEN, TOKENS, Stack

from .test_roundtrip import orders_for, recv_json, recv_until_final, ws_connect


def gwctl(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "GATEWAY_URL": stack.base, "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN}
    return subprocess.run(
        [sys.executable, "-m", "odoo_gateway_client.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_a_failed_task_reopened_ends_succeeded_once_with_one_effect_and_unbroken_seq(stack: Stack) -> None:
    customer = {"customer": "Demo Customer", "lines": [{"product": "DEMO-004", "quantity": 1}]}
    # Odoo refuses the first write for good (a permanent error): the task fails at once.
    stack.standin.add_fault(FaultRule(kind="error", model="sale.order", method="create", message="locked period"))
    async with await ws_connect(stack.ws) as ws:
        frame = {"type": "submit", "ref": "s", "idempotency_key": str(uuid.uuid4()), "kind": "sale.order.create"}
        await ws.send(json.dumps({**frame, "payload": customer}))
        accepted = await recv_json(ws)
        task_id = accepted["task_id"]
        first = await recv_until_final(ws, task_id)
        assert first[-1]["status"] == "failed" and "locked period" in first[-1]["error"]["message"]
        assert orders_for(stack, task_id) == []

        listed = await asyncio.to_thread(gwctl, stack, "failed", "list", "--tenant", "demo", "--json")
        assert listed.returncode == 0, listed.stderr
        assert task_id in [t["task_id"] for t in json.loads(listed.stdout)]
        retried = await asyncio.to_thread(gwctl, stack, "failed", "retry", task_id)
        assert retried.returncode == 0, retried.stdout + retried.stderr
        assert f"{task_id}  reopened: retrying" in retried.stdout

        # The same socket sees the reopen and the new attempt, in seq order.
        second = await recv_until_final(ws, task_id)
    assert [(e["seq"], e["status"]) for e in second] == [(7, "retrying"), (10, "running"), (12, "succeeded")]
    assert second[0]["error"]["code"] == "reopened"
    seen = [e["seq"] for e in first + second]
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        history = (await http.get(f"/v1/tasks/{task_id}/events?after=0", headers=stack.headers())).json()
    assert [e["seq"] for e in history["events"]] == seen == sorted(set(seen))
    assert history["status"] == "succeeded"
    # One effect in Odoo, counted from Odoo's side by the task's reference.
    await asyncio.sleep(1.0)  # any stray duplicate message would have been applied by now
    assert len(orders_for(stack, task_id)) == 1
    assert stack.task(task_id)["result"]["sale_order_id"] == orders_for(stack, task_id)[0]["id"]
    # Only once: it is not failed any more.
    again = await asyncio.to_thread(gwctl, stack, "failed", "retry", task_id)
    assert again.returncode == 2 and "task_not_failed" in again.stdout


def test_admin_api_needs_the_admin_token_and_tenants_cannot_use_it(stack: Stack) -> None:
    tenant = {"Authorization": f"Bearer {TOKENS['demo']}"}
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.get(f"{stack.base}/v1/admin/failed", headers=tenant, timeout=10).status_code == 401
    assert httpx.get(f"{stack.base}/v1/admin/failed", timeout=10).status_code == 401
    assert httpx.get(f"{stack.base}/v1/tasks/{uuid.uuid4()}", headers=admin, timeout=10).status_code == 401
    ghost = httpx.post(f"{stack.base}/v1/admin/tasks/{uuid.uuid4()}/retry", headers=admin, timeout=10)
    assert ghost.status_code == 404
    bad: Any = httpx.get(f"{stack.base}/v1/admin/failed?limit=0", headers=admin, timeout=10)
    assert bad.status_code == 400
    missing = gwctl(stack, "failed", "retry", str(uuid.uuid4()))
    assert missing.returncode == 5 and "not_found" in missing.stdout
