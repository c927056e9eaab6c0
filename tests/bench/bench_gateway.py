"""Benchmark: acknowledgement throughput and latency, end-to-end completion, and memory
per idle WebSocket, on the real stack (RabbitMQ, PostgreSQL or SQLite, real processes).

    .venv/bin/python -m tests.bench.bench_gateway --tasks 2000 --concurrency 48 --load-processes 4 --sockets 1000

Prints a table and writes the figures as JSON (``--json``). Figures, not assertions:
timing targets do not belong in pass/fail tests on a shared 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import json
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets

from tests.bench.figures import rss_kib
from tests.chaos.system import ChaosSystem
from tests.support.processes import ROOT
from tests.support.stack import TOKENS

HEADERS = {"Authorization": f"Bearer {TOKENS['demo']}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _submit_share(base: str, first: int, count: int, concurrency: int) -> tuple[list[float], list[str]]:
    latencies: list[float] = []
    ids: list[str] = []
    semaphore = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:

        async def one(i: int) -> None:
            payload = {"customer": "Demo Customer", "lines": [{"product": f"DEMO-{1 + i % 20:03d}", "quantity": 1}]}
            async with semaphore:
                started = time.perf_counter()
                response = await http.post(
                    "/v1/tasks",
                    headers={**HEADERS, "Idempotency-Key": str(uuid.uuid4())},
                    json={"kind": "sale.order.create", "payload": payload},
                )
                latencies.append(time.perf_counter() - started)
            assert response.status_code == 202, response.text
            ids.append(response.json()["task_id"])

        await asyncio.gather(*(one(i) for i in range(first, first + count)))
    return latencies, ids


def _load_process(base: str, first: int, count: int, concurrency: int) -> tuple[list[float], list[str]]:
    return asyncio.run(_submit_share(base, first, count, concurrency))


async def submit_all(base: str, tasks: int, concurrency: int, processes: int) -> dict[str, Any]:
    """Acknowledgements first (from several load processes: one Python process cannot
    drive many HTTP connections fast enough), then until every task is final."""
    per = tasks // processes
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(processes) as pool:
        shares = await asyncio.gather(
            *(
                loop.run_in_executor(pool, _load_process, base, n * per, per, max(1, concurrency // processes))
                for n in range(processes)
            )
        )
    ack_seconds = time.perf_counter() - started
    latencies = [value for share in shares for value in share[0]]
    pending = {task_id for share in shares for task_id in share[1]}
    async with httpx.AsyncClient(base_url=base, timeout=60) as http:
        while pending:
            done = set()
            for task_id in list(pending)[:200]:
                body = (await http.get(f"/v1/tasks/{task_id}", headers=HEADERS)).json()
                if body["status"] in ("succeeded", "failed"):
                    done.add(task_id)
            pending -= done
            if pending and not done:
                await asyncio.sleep(0.2)
    total_seconds = time.perf_counter() - started
    count = per * processes
    return {
        "tasks": count,
        "concurrency": concurrency,
        "load_processes": processes,
        "ack_per_second": round(count / ack_seconds, 1),
        "ack_p50_ms": round(percentile(latencies, 0.5) * 1000, 1),
        "ack_p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "end_to_end_per_second": round(count / total_seconds, 1),
        "end_to_end_seconds": round(total_seconds, 1),
    }


async def idle_sockets(base: str, gateway_pid: int, count: int) -> dict[str, Any]:
    ws_url = base.replace("http://", "ws://") + "/v1/ws"
    before = rss_kib(gateway_pid)
    sockets = []
    started = time.perf_counter()
    for start in range(0, count, 100):
        batch = await asyncio.gather(
            *(websockets.connect(ws_url, additional_headers=HEADERS) for _ in range(start, min(count, start + 100)))
        )
        sockets.extend(batch)
    open_seconds = time.perf_counter() - started
    # Each socket pings once, so the session is fully set up (auth, registry, queues).
    for ws in sockets:
        await ws.send('{"type":"ping"}')
    for ws in sockets:
        await ws.recv()
    await asyncio.sleep(1.0)
    after = rss_kib(gateway_pid)
    await asyncio.gather(*(ws.close() for ws in sockets))
    return {
        "sockets": count,
        "open_seconds": round(open_seconds, 2),
        "gateway_rss_before_mib": round(before / 1024, 1),
        "gateway_rss_after_mib": round(after / 1024, 1),
        "kib_per_socket": round((after - before) / count, 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """The system as in production: stand-in, gateway and workers each in their own process,
    PostgreSQL store; the load comes from this process."""
    system = ChaosSystem(ROOT / "test-artifacts" / "bench-logs", worker_threads=args.threads, gateways=1)
    await asyncio.to_thread(system.start)
    try:
        base = f"http://127.0.0.1:{system.ports[0]}"
        gateway = system.gateways[0]
        assert gateway is not None
        results: dict[str, Any] = {"store": "postgres", "worker_threads": args.threads}
        results["submit"] = await submit_all(base, args.tasks, args.concurrency, args.load_processes)
        results["sockets"] = await idle_sockets(base, gateway.pid, args.sockets)
        return results
    finally:
        await asyncio.to_thread(system.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--load-processes", type=int, default=4)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--json", type=Path, default=ROOT / "test-artifacts" / "bench.json")
    args = parser.parse_args()
    results = asyncio.run(run(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
