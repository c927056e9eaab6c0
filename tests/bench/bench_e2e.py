"""Benchmark: end-to-end overhead. Submissions over open WebSockets at a fixed rate; for
each task, the time from sending ``submit`` to receiving its ``succeeded`` event, minus
the fixed time the Odoo stand-in spends in the task's write (``--odoo-delay``). What is
left is ours: the gateway, the store, RabbitMQ both ways, the worker, and the stand-in's
other (fast) calls for the effect lookup and reads.

    .venv/bin/python -m tests.bench.bench_e2e --rate 50 200 --seconds 10

Real stack: stand-in, gateway and one Dramatiq worker process in their own processes, the
clients in this one. Every process shares the 2 cores, so a rate the worker cannot keep up
with shows as queueing, not as overhead per task. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import tempfile
import time
import uuid
from typing import Any

import websockets

from tests.bench.figures import cpu_seconds, percentile_ms
from tests.odoo_standin import FaultRule
from tests.odoo_standin import server as standin_server
from tests.support.processes import ROOT, start_worker
from tests.support.services import create_pg_database, drop_pg_database
from tests.support.stack import TOKENS, Stack, running_stack
from tests.support.standin_process import StandinProcess

LOG_DIR = ROOT / "test-artifacts" / "logs" / "bench-e2e"


class OdooClock:
    """Time spent inside the stand-in's request handler (it runs in this process), so the
    report can also subtract all of Odoo's time, not only the fixed delay."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.calls = 0
        handler = standin_server._Handler
        original = handler.do_POST
        clock = self

        def timed(self: Any) -> None:
            started = time.perf_counter()
            try:
                original(self)
            finally:
                clock.seconds += time.perf_counter() - started
                clock.calls += 1

        handler.do_POST = timed  # type: ignore[method-assign]

    def reset(self) -> None:
        self.seconds, self.calls = 0.0, 0


ODOO_CLOCK = OdooClock()
HEADERS = {"Authorization": f"Bearer {TOKENS['demo']}"}


Marks = dict[str, dict[str, float]]  # ref -> stage -> wall-clock time


async def _client(url: str, rate: float, seconds: float, marks: Marks) -> int:
    """One socket submitting at ``rate``; for each task, the wall-clock time of each stage:
    sent, accepted (frame received), running and succeeded (stamped by the worker when it
    stored them), received (the ``succeeded`` frame arrived here)."""
    ref_of_task: dict[str, str] = {}
    async with websockets.connect(url, additional_headers=HEADERS, max_queue=None) as ws:

        async def reader() -> None:
            async for text in ws:
                frame = json.loads(text)
                if frame["type"] == "accepted":
                    ref_of_task[frame["task_id"]] = frame["ref"]
                    marks[frame["ref"]]["accepted"] = time.time()
                elif frame["type"] == "event" and frame["task_id"] in ref_of_task:
                    stage = marks[ref_of_task[frame["task_id"]]]
                    stage[frame["status"]] = frame["at"]
                    if frame["status"] == "succeeded":
                        stage["received"] = time.time()

        listening = asyncio.create_task(reader())
        started = time.perf_counter()
        count = 0
        while time.perf_counter() - started < seconds:
            ref = uuid.uuid4().hex
            lines = [{"product": f"DEMO-{1 + count % 20:03d}", "quantity": 1}]
            frame = {
                "type": "submit",
                "ref": ref,
                "idempotency_key": ref,
                "kind": "sale.order.create",
                "payload": {"customer": "Demo Customer", "lines": lines},
            }
            marks[ref] = {"sent": time.time()}
            await ws.send(json.dumps(frame))
            count += 1
            await asyncio.sleep(max(0.0, started + count / rate - time.perf_counter()))
        # Wait for the stragglers (bounded), then stop reading.
        deadline = time.perf_counter() + 30
        while any("received" not in m for m in marks.values()) and time.perf_counter() < deadline:
            await asyncio.sleep(0.1)
        listening.cancel()
    return count


def _broker_pid() -> int:
    """RabbitMQ's Erlang VM on this machine (the one the stack uses)."""
    found = subprocess.run(["pgrep", "-o", "beam.smp"], capture_output=True, text=True, check=True)
    return int(found.stdout.split()[0])


async def _measure(stack: Stack, rate: float, seconds: float, odoo_delay: float, sockets: int) -> dict[str, Any]:
    marks: Marks = {}
    pids = [stack.gateways[0][0].pid, stack.worker.pid, _broker_pid()]
    # A stand-in in a process of its own: its CPU joins the clients' figure; its time per
    # call is not measured (OdooClock sees only a stand-in in this process).
    standin_pid = stack.standin.proc.pid if isinstance(stack.standin, StandinProcess) else None
    standin_before = cpu_seconds(standin_pid) if standin_pid else 0.0
    cpu_before = [cpu_seconds(pid) for pid in pids]
    ODOO_CLOCK.reset()
    own_before = time.process_time()  # this process: the clients and the stand-in's threads
    started = time.perf_counter()
    await asyncio.gather(*(_client(stack.ws, rate / sockets, seconds, marks) for _ in range(sockets)))
    elapsed = time.perf_counter() - started
    gateway_cpu, worker_cpu, broker_cpu = (
        cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)
    )
    finished = [m for m in marks.values() if "received" in m]
    overheads = [m["received"] - m["sent"] - odoo_delay for m in finished]

    def stage_p50(start: str, end: str, minus: float = 0.0) -> float | None:
        return percentile_ms([m[end] - m[start] - minus for m in finished if start in m and end in m], 0.5)

    standin_cpu = cpu_seconds(standin_pid) - standin_before if standin_pid else 0.0
    odoo_measured = standin_pid is None
    odoo_per_task = ODOO_CLOCK.seconds / max(1, len(marks))
    beyond_odoo = [m["received"] - m["sent"] - odoo_per_task for m in finished] if odoo_measured else []
    return {
        "rate": rate,
        "submitted": len(marks),
        # All stand-in time per task (every call, the fixed delay included), mean:
        "odoo_calls_per_task": round(ODOO_CLOCK.calls / max(1, len(marks)), 1) if odoo_measured else None,
        "odoo_ms_per_task": round(1000 * odoo_per_task, 1) if odoo_measured else None,
        "overhead_beyond_all_odoo_p50_ms": percentile_ms(beyond_odoo, 0.5),
        "overhead_beyond_all_odoo_p99_ms": percentile_ms(beyond_odoo, 0.99),
        "succeeded": len(overheads),
        "overhead_p50_ms": percentile_ms(overheads, 0.5),
        "overhead_p99_ms": percentile_ms(overheads, 0.99),
        # Where the time goes (p50 of each stage, wall clock of one machine):
        "accept_p50_ms": stage_p50("sent", "accepted"),
        "to_running_p50_ms": stage_p50("sent", "running"),
        "running_to_succeeded_minus_odoo_p50_ms": stage_p50("running", "succeeded", odoo_delay),
        "succeeded_to_client_p50_ms": stage_p50("succeeded", "received"),
        "gateway_cpu_percent": round(100 * gateway_cpu / elapsed),
        "standin_and_clients_cpu_percent": round(100 * (time.process_time() - own_before + standin_cpu) / elapsed),
        "rabbitmq_cpu_percent": round(100 * broker_cpu / elapsed),
        "worker_cpu_percent": round(100 * worker_cpu / elapsed),
    }


def measure(
    store: str,
    rates: list[float],
    seconds: float,
    odoo_delay: float,
    threads: int,
    processes: int = 1,
    standin_process: bool = False,
) -> list[dict[str, Any]]:
    pg_url = create_pg_database() if store == "postgres" else None
    rows = []
    try:
        with tempfile.TemporaryDirectory() as scratch:
            url = pg_url or f"sqlite:///{scratch}/e2e.sqlite3"
            with running_stack(
                url, LOG_DIR / store, gateways=1, standin_process=standin_process, LOG_LEVEL="WARNING"
            ) as stack:
                stack.worker.stop()
                stack.worker = start_worker(stack.env, stack.log_dir, threads=threads, processes=processes)
                if odoo_delay > 0:
                    stack.standin.add_fault(
                        FaultRule(kind="delay", model="sale.order", method="create", seconds=odoo_delay, times=-1)
                    )
                asyncio.run(_measure(stack, 5, 2, odoo_delay, 1))  # warm up: connections, caches
                for rate in rates:
                    row = asyncio.run(_measure(stack, rate, seconds, odoo_delay, sockets=4))
                    rows.append(
                        {
                            "store": store,
                            "odoo_delay_ms": round(1000 * odoo_delay),
                            "worker_processes": processes,
                            "threads": threads,
                            **row,
                        }
                    )
    finally:
        if pg_url:
            drop_pg_database(pg_url)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| store | worker processes | tasks/s offered | succeeded / submitted | overhead p50 / p99 "
        "| without any Odoo time p50 / p99 | Odoo calls, ms per task "
        "| stages p50: accepted · running · succeeded − delay · at client "
        "| CPU: gateway · worker · stand-in and clients · RabbitMQ (of 200 %) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['store']} | {r['worker_processes']} | {r['rate']:g} | {r['succeeded']:,} / {r['submitted']:,} | "
            f"{r['overhead_p50_ms']} ms / {r['overhead_p99_ms']} ms | "
            + (
                f"{r['overhead_beyond_all_odoo_p50_ms']} ms / {r['overhead_beyond_all_odoo_p99_ms']} ms | "
                f"{r['odoo_calls_per_task']}, {r['odoo_ms_per_task']} ms | "
                if r["odoo_calls_per_task"] is not None
                else "not measured (stand-in in its own process) | not measured | "
            )
            + f"{r['accept_p50_ms']} · {r['to_running_p50_ms']} · {r['running_to_succeeded_minus_odoo_p50_ms']} · "
            f"{r['succeeded_to_client_p50_ms']} ms | "
            f"{r['gateway_cpu_percent']} · {r['worker_cpu_percent']} · {r['standin_and_clients_cpu_percent']} · "
            f"{r['rabbitmq_cpu_percent']} % |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, nargs="+", default=[50.0, 200.0], help="tasks per second offered")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--odoo-delay", type=float, default=0.02, help="seconds Odoo spends in sale.order create")
    parser.add_argument("--threads", type=int, default=16, help="worker threads per process")
    parser.add_argument("--processes", type=int, default=1, help="worker processes")
    parser.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--standin-process",
        action="store_true",
        help="run the Odoo stand-in in a process of its own (its time per call is then not measured)",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(
        args.store, args.rate, args.seconds, args.odoo_delay, args.threads, args.processes, args.standin_process
    )
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
