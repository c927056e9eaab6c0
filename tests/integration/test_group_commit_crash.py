"""Guarantee 1 under group commit: the gateway is SIGKILLed while batches of submissions
are being committed and published. Every submission it acknowledged (202) is in the
store and applied exactly once; every one it did not, replayed with the same key like a
real client would, is applied exactly once too. Effects are read from Odoo's side (the
stand-in's sale orders, by reference), never from what the gateway or workers report."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
import pytest

from tests.integration.conftest import LOG_DIR
from tests.support.services import create_pg_database, drop_pg_database
from tests.support.stack import TOKENS, Stack, running_stack, wait_for

SALE = {
    "kind": "sale.order.create",
    "payload": {"customer": "Demo Customer", "lines": [{"product": "DEMO-003", "quantity": 1}]},
}
HEADERS = {"Authorization": f"Bearer {TOKENS['demo']}"}


async def _load(base: str, acked: dict[str, str], sent: list[str], stop: asyncio.Event) -> None:
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=10) as http:
        while not stop.is_set():
            key = str(uuid.uuid4())
            sent.append(key)
            try:
                response = await http.post("/v1/tasks", json=SALE, headers={"Idempotency-Key": key})
            except httpx.HTTPError:
                return  # the gateway died under us: this key is not acknowledged
            if response.status_code == 202:
                acked[key] = response.json()["task_id"]


async def _replay(base: str, key: str) -> str:
    async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=10) as http:
        for _ in range(50):
            response = await http.post("/v1/tasks", json=SALE, headers={"Idempotency-Key": key})
            if response.status_code == 202:
                task_id: str = response.json()["task_id"]
                return task_id
            await asyncio.sleep(0.5)  # 503 while its claim is live: retry, as clients do
    raise AssertionError(f"key {key} never accepted")


def _crash_and_recover(stack: Stack) -> None:
    acked: dict[str, str] = {}
    sent: list[str] = []

    async def load_then_kill() -> None:
        stop = asyncio.Event()
        clients = [asyncio.create_task(_load(stack.base, acked, sent, stop)) for _ in range(32)]
        # Under load for a while (at least 1.5 s and 50 acknowledgements, however busy the
        # machine), so the kill lands in the middle of a stream of batches.
        started = asyncio.get_running_loop().time()
        while len(acked) < 50 or asyncio.get_running_loop().time() - started < 1.5:
            assert asyncio.get_running_loop().time() - started < 60, f"only {len(acked)} acknowledged in 60 s"
            await asyncio.sleep(0.05)
        stack.gateways[0][0].kill()  # SIGKILL, mid-batch: 32 submissions are always in flight
        stop.set()
        await asyncio.gather(*clients)

    asyncio.run(load_then_kill())
    stack.restart_gateway()
    assert len(acked) > 20, "the load should have been acknowledged for a while before the kill"

    async def replay_all() -> dict[str, str]:
        ids = await asyncio.gather(*(_replay(stack.base, key) for key in sent))
        return dict(zip(sent, ids, strict=True))

    replayed = asyncio.run(replay_all())
    for key, task_id in acked.items():
        assert replayed[key] == task_id, "an acknowledged task was lost or replaced"

    def orders() -> dict[str, int]:
        refs: dict[str, int] = {}
        for order in stack.standin.records("sale.order"):
            ref = str(order.get("client_order_ref", ""))
            refs[ref] = refs.get(ref, 0) + 1
        return refs

    wanted = {f"GW-{task_id}" for task_id in replayed.values()}
    wait_for(lambda: wanted <= set(orders()), 120, "every submission applied in Odoo")
    applied = orders()
    assert all(applied[ref] == 1 for ref in wanted), "a submission was applied twice"
    print(
        f"\ngroup-commit crash: {len(sent)} submissions, {len(acked)} acknowledged before the SIGKILL; all applied once"
    )


def test_sigkill_mid_batch_loses_nothing_and_applies_once_sqlite(tmp_path: Path, odoo_api: str) -> None:
    log_dir = LOG_DIR / f"crash-sqlite-{odoo_api}"
    with running_stack(f"sqlite:///{tmp_path}/g.sqlite3", log_dir, gateways=1, odoo_api=odoo_api) as stack:
        _crash_and_recover(stack)


@pytest.mark.usefixtures("_services")
def test_sigkill_mid_batch_loses_nothing_and_applies_once_postgres(odoo_api: str) -> None:
    url = create_pg_database()
    try:
        with running_stack(url, LOG_DIR / f"crash-postgres-{odoo_api}", gateways=1, odoo_api=odoo_api) as stack:
            _crash_and_recover(stack)
    finally:
        drop_pg_database(url)
