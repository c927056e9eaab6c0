"""Benchmark: the resume storm. N devices each hold one open task; the gateway restarts;
all N reconnect at once and resume their task from seq 0. Reports how long until every
one of them had its ``resumed`` answer, per-client latency, errors, and the gateway's CPU.

    .venv/bin/python -m tests.bench.bench_storm --clients 10000

The clients are lean raw WebSockets (asyncio streams, a hand-built handshake and frames)
in this one Python process, on the same 2 cores as the gateway and RabbitMQ, so the figure
is a floor. The worker is stopped: every task holds one stored event, ``accepted`` at seq 0,
which the device has seen, so each resume gets its ``resumed`` frame and no ``event``.
Figures, not assertions; ``client_cpu_s`` is this process's CPU over the storm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.bench.figures import cpu_seconds, percentile_ms
from tests.bench.lean_ws import LeanWebSocket
from tests.support.processes import ROOT
from tests.support.services import create_pg_database, drop_pg_database
from tests.support.stack import TOKENS, running_stack

LOG_DIR = ROOT / "test-artifacts" / "logs" / "bench-storm"


async def _submit_tasks(base: str, count: int, concurrency: int = 64) -> list[str]:
    ids: list[str] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {"Authorization": f"Bearer {TOKENS['demo']}"}
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits, headers=headers) as http:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            # One record per device, so no task waits on another's turn.
            lines = [{"product": f"DEMO-{index:06d}", "quantity": 1}]
            body = {"kind": "inventory.adjust", "payload": {"location": "WH/Stock", "lines": lines}}
            async with semaphore:
                response = await http.post("/v1/tasks", json=body, headers={"Idempotency-Key": uuid.uuid4().hex})
            response.raise_for_status()
            ids.append(response.json()["task_id"])

        await asyncio.gather(*(one(i) for i in range(count)))
    return ids


class _Device:
    """One reconnecting device: handshake, ``resume {task: 0}``, wait for ``resumed``."""

    def __init__(self, host: str, port: int, task_id: str) -> None:
        self.host, self.port, self.task_id = host, port, task_id
        self.ws: LeanWebSocket | None = None
        self.latency: float | None = None
        self.error: str | None = None

    async def storm(self, gate: asyncio.Semaphore) -> None:
        started = time.perf_counter()
        try:
            async with gate:  # connects in flight at once (the listen backlog is finite)
                self.ws = await LeanWebSocket.connect(self.host, self.port)
            self.ws.send_text(json.dumps({"type": "resume", "tasks": {self.task_id: 0}}))
            await self.ws.read_until(b'"resumed"')
            self.latency = time.perf_counter() - started
        except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"

    def close(self) -> None:
        if self.ws is not None:
            self.ws.abort()


def _start_profiler(pid: int, output: str) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (every thread that is not idle, named) until SIGINT, into ``output``
    (raw collapsed stacks, for flame graphs or a quick grep)."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        raise SystemExit(f"--profile needs py-spy beside {sys.executable}: pip install py-spy")
    cmd = [spy, "record", "-p", str(pid), "-r", "200", "--threads", "--format", "raw", "-o", output]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # attached before the first connect
    return proc


async def _storm(
    base: str, task_ids: list[str], connects_in_flight: int, gateway_pid: int, profile: str | None = None
) -> dict[str, Any]:
    host, port = base.removeprefix("http://").split(":")
    devices = [_Device(host, int(port), task_id) for task_id in task_ids]
    gate = asyncio.Semaphore(connects_in_flight)
    profiler = _start_profiler(gateway_pid, profile) if profile else None
    cpu_before, client_cpu_before = cpu_seconds(gateway_pid), time.process_time()
    started = time.perf_counter()
    await asyncio.gather(*(device.storm(gate) for device in devices))
    elapsed = time.perf_counter() - started
    gateway_cpu = cpu_seconds(gateway_pid) - cpu_before
    client_cpu = time.process_time() - client_cpu_before
    if profiler is not None:
        profiler.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        profiler.wait(60)
    for device in devices:
        device.close()
    latencies = [d.latency for d in devices if d.latency is not None]
    errors: dict[str, int] = {}
    for device in devices:
        if device.error:
            errors[device.error] = errors.get(device.error, 0) + 1
    return {
        "clients": len(devices),
        "answered": len(latencies),
        "all_answered_s": round(max(latencies), 2) if latencies else None,
        "storm_s": round(elapsed, 2),
        "latency_p50_ms": percentile_ms(latencies, 0.5),
        "latency_p99_ms": percentile_ms(latencies, 0.99),
        "errors": errors,
        "gateway_cpu_s": round(gateway_cpu, 2),
        "gateway_cpu_ms_per_resume": round(1000 * gateway_cpu / max(1, len(latencies)), 2),
        # This process (the clients): if it used a core, the figure is the bench's, not the gateway's.
        "client_cpu_s": round(client_cpu, 2),
    }


def measure(
    store: str, clients: int, connects_in_flight: int, workers: int, profile: str | None = None
) -> dict[str, Any]:
    pg_url = create_pg_database() if store == "postgres" else None
    overrides = {
        # One tenant holds all the devices here; the default quotas would (rightly) refuse it.
        "GATEWAY_MAX_SOCKETS_PER_TENANT": str(clients + 100),
        "GATEWAY_MAX_WATCHES_PER_TENANT": str(clients + 100),
        "GATEWAY_WORKERS": str(workers),
        "LOG_LEVEL": "WARNING",
    }
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = pg_url or f"sqlite:///{scratch}/storm.sqlite3"
            with running_stack(url, LOG_DIR / store, gateways=1, **overrides) as stack:
                stack.worker.stop()
                task_ids = asyncio.run(_submit_tasks(stack.base, clients))
                gateway_pid = stack.restart_gateway().pid  # SIGTERM: it closes its sockets
                result = asyncio.run(_storm(stack.base, task_ids, connects_in_flight, gateway_pid, profile))
    finally:
        if pg_url:
            drop_pg_database(pg_url)
    return {"store": store, "gateway_processes": workers, "connects_in_flight": connects_in_flight, **result}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| store | processes | clients | answered | all answered | p50 / p99 | gateway CPU per resume "
        "| client CPU | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['gateway_processes']} | {r['clients']:,} | {r['answered']:,} | "
            f"{r['all_answered_s']} s | {r['latency_p50_ms']} ms / {r['latency_p99_ms']} ms | "
            f"{r['gateway_cpu_ms_per_resume']} ms | {r['client_cpu_s']} s | {sum(r['errors'].values())} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--in-flight", type=int, default=500, help="connects in flight at once")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes (GATEWAY_WORKERS)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", metavar="FILE", help="py-spy record the gateway during the storm into FILE")
    args = parser.parse_args()
    rows = [measure(args.store, args.clients, args.in_flight, args.workers, args.profile)]
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
