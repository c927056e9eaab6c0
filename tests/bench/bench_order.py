"""Benchmark: throughput of inventory counts on one hot record versus spread over cold ones.

Tasks sharing a record (a (location, product) quant) run one at a time, in acceptance
order; tasks on different records run side by side on every worker thread. This measures
both on the real stack (RabbitMQ, the task store, one Dramatiq worker process, one gateway),
with the Odoo stand-in spending a fixed time in each apply:

    .venv/bin/python -m tests.bench.bench_order --tasks 200 --odoo-delay 0.05 --store sqlite

Prints a table (JSON with ``--json``). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from shared.store import open_store
from tests.odoo_standin import FaultRule
from tests.support.processes import ROOT
from tests.support.services import create_pg_database, drop_pg_database
from tests.support.stack import Stack, running_stack


async def _submit_all(stack: Stack, products: list[str], tasks: int) -> list[str]:
    limit = asyncio.Semaphore(32)

    async def one(http: httpx.AsyncClient, index: int) -> str:
        payload = {"location": "WH/Stock", "lines": [{"product": products[index % len(products)], "quantity": index}]}
        async with limit:
            response = await http.post(
                "/v1/tasks",
                headers=stack.headers(key=str(uuid.uuid4())),
                json={"kind": "inventory.adjust", "payload": payload},
            )
        response.raise_for_status()
        task_id: str = response.json()["task_id"]
        return task_id

    async with httpx.AsyncClient(base_url=stack.base, timeout=60) as http:
        return list(await asyncio.gather(*(one(http, i) for i in range(tasks))))


def _wait_all_final(database_url: str, task_ids: list[str], timeout: float) -> int:
    store = open_store(database_url)
    try:
        deadline = time.monotonic() + timeout
        pending = set(task_ids)
        failed = 0
        while pending and time.monotonic() < deadline:
            for task_id in list(pending):
                record = store.get(task_id)
                if record is not None and record.status.final:
                    pending.discard(task_id)
                    failed += record.status.value == "failed"
            time.sleep(0.05)
        if pending:
            raise RuntimeError(f"{len(pending)} tasks did not end within {timeout}s")
        return failed
    finally:
        store.close()


def measure(stack: Stack, products: list[str], tasks: int) -> dict[str, Any]:
    started = time.monotonic()
    task_ids = asyncio.run(_submit_all(stack, products, tasks))
    accepted = time.monotonic()
    failed = _wait_all_final(stack.env["DATABASE_URL"], task_ids, timeout=600)
    ended = time.monotonic()
    return {
        "records": len(products),
        "tasks": tasks,
        "failed": failed,
        "submit_seconds": round(accepted - started, 2),
        "total_seconds": round(ended - started, 2),
        "tasks_per_second": round(tasks / (ended - started), 1),
    }


def run(store_kind: str, tasks: int, odoo_delay: float, threads: int) -> dict[str, Any]:
    log_dir = ROOT / "test-artifacts" / "bench-order"
    pg_url = create_pg_database() if store_kind == "postgres" else None
    tmp = Path(tempfile.mkdtemp(prefix="bench-order-"))
    url = pg_url or f"sqlite:///{tmp / 'store.sqlite3'}"
    try:
        with running_stack(url, log_dir, gateways=1, LOG_LEVEL="WARNING") as stack:
            if threads != 4:
                stack.worker.stop()
                from tests.support.processes import start_worker

                stack.worker = start_worker(stack.env, log_dir, threads=threads)
            if odoo_delay > 0:
                stack.standin.add_fault(
                    FaultRule(
                        kind="delay", model="stock.quant", method="action_apply_inventory", seconds=odoo_delay, times=-1
                    )
                )
            hot = measure(stack, ["DEMO-001"], tasks)
            cold = measure(stack, [f"DEMO-{i:03d}" for i in range(1, 21)], tasks)
    finally:
        if pg_url:
            drop_pg_database(pg_url)
    return {
        "store": store_kind,
        "odoo_apply_delay_s": odoo_delay,
        "worker_threads": threads,
        "hot_key": hot,
        "cold_keys": cold,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--odoo-delay", type=float, default=0.05, help="seconds Odoo spends in each apply")
    parser.add_argument("--threads", type=int, default=4, help="worker threads")
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    results = [run(kind, args.tasks, args.odoo_delay, args.threads) for kind in kinds]
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{'store':<9} {'records':>7} {'tasks':>6} {'failed':>6} {'total s':>8} {'tasks/s':>8}")
    for result in results:
        for name in ("hot_key", "cold_keys"):
            row = result[name]
            print(
                f"{result['store']:<9} {row['records']:>7} {row['tasks']:>6} {row['failed']:>6} "
                f"{row['total_seconds']:>8} {row['tasks_per_second']:>8}"
            )
    print(f"(Odoo stand-in: {args.odoo_delay * 1000:.0f} ms per apply; {args.threads} worker threads)")


if __name__ == "__main__":
    main()
