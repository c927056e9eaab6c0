"""Benchmark: fan-out. One task watched by N sockets; signed task events published to the
events exchange at a fixed rate (as a worker would); every socket receives every event.
Reports pushed frames per second (events/s x sockets) and relay-to-socket latency: from
the event's ``at``, stamped when published, to its arrival at a client socket, which is
the kernel's receive timestamp on that socket (``SO_TIMESTAMPNS``).

    .venv/bin/python -m tests.bench.bench_fanout --sockets 1000 --rate 30 --seconds 10

The clients (lean raw WebSockets, ``lean_ws.py``) run in this one Python process on the same 2 cores as the gateway and
RabbitMQ, so the figures are a floor. One process reads its 1,000 sockets one after another, one reader task each: a
frame that reached the last of them waits for the other 999 to be read. So the latency to when a reader task got the
frame is reported too ("read"): that was this benchmark's figure before the receive timestamps, and it includes the
clients' own turn-taking (a little more of it than before: reading with the timestamp costs about 1 us more per frame).
Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import threading
import time
import uuid
from typing import Any

import httpx
import pika

from odoo_gateway_wire.statuses import TaskStatus, event_seq
from shared.events import TaskEvent
from shared.names import EVENTS_EXCHANGE
from shared.signing import SIGNATURE_HEADER, EventSigner
from tests.bench.figures import cpu_seconds
from tests.bench.lean_ws import LeanWebSocket
from tests.support.processes import ROOT
from tests.support.stack import SIGNING_KEY, TOKENS, Stack, running_stack

LOG_DIR = ROOT / "test-artifacts" / "logs" / "bench-fanout"
HEADERS = {"Authorization": f"Bearer {TOKENS['demo']}"}
SALE = {
    "kind": "sale.order.create",
    "payload": {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 1}]},
}


def _publish_paced(amqp_url: str, task_id: str, rate: float, seconds: float, sent: list[int]) -> None:
    signer = EventSigner(SIGNING_KEY.encode())
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    channel.confirm_delivery()
    started = time.monotonic()
    attempt = 1
    while time.monotonic() - started < seconds:
        attempt += 1
        event = TaskEvent(
            task_id=task_id, seq=event_seq(attempt, TaskStatus.RUNNING), status=TaskStatus.RUNNING, attempt=attempt
        )
        body = event.model_dump_json().encode()
        channel.basic_publish(
            EVENTS_EXCHANGE,
            "task.running",
            body,
            pika.BasicProperties(delivery_mode=2, headers={SIGNATURE_HEADER: signer.sign(body)}),
        )
        sent.append(event.seq)
        time.sleep(max(0.0, started + (attempt - 1) / rate - time.monotonic()))
    connection.close()


async def _watch(ws: LeanWebSocket, latencies: list[float], read_latencies: list[float], counts: list[int]) -> None:
    """Until cancelled: for each event, when it reached the socket and when this reader
    task got it (both taken before the parse, which is the client's cost)."""
    while True:
        opcode, payload = await ws.read_frame()
        read = time.time()
        arrived = ws.received_at
        if opcode == 0x1 and payload.startswith(b'{"type":"event"'):
            counts[0] += 1
            at = json.loads(payload)["at"]
            latencies.append(arrived - at)
            read_latencies.append(read - at)


async def measure(stack: Stack, sockets: int, rate: float, seconds: float) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=stack.base, headers=HEADERS, timeout=10) as http:
        response = await http.post("/v1/tasks", json=SALE, headers={"Idempotency-Key": str(uuid.uuid4())})
        task_id = response.json()["task_id"]
    host, port = stack.base.removeprefix("http://").split(":")
    conns: list[LeanWebSocket] = []
    for start in range(0, sockets, 100):
        batch = min(100, sockets - start)
        conns += await asyncio.gather(*(LeanWebSocket.connect(host, int(port), stamped=True) for _ in range(batch)))
    for ws in conns:
        ws.send_text(json.dumps({"type": "resume", "tasks": {task_id: 0}}))
    for ws in conns:
        await ws.read_until(b'"resumed"')
    latencies: list[float] = []
    read_latencies: list[float] = []
    counts = [0]
    watchers = [asyncio.create_task(_watch(ws, latencies, read_latencies, counts)) for ws in conns]
    sent: list[int] = []
    gateway_pid = stack.gateways[0][0].pid
    cpu_before, own_before = cpu_seconds(gateway_pid), time.process_time()
    publisher = threading.Thread(target=_publish_paced, args=(stack.env["AMQP_URL"], task_id, rate, seconds, sent))
    started = time.monotonic()
    publisher.start()
    await asyncio.to_thread(publisher.join)
    await asyncio.sleep(2.0)  # let the last events arrive
    for watcher in watchers:
        watcher.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)
    received = counts[0]
    elapsed = time.monotonic() - started
    gateway_cpu = 100 * (cpu_seconds(gateway_pid) - cpu_before) / elapsed
    client_cpu = 100 * (time.process_time() - own_before) / elapsed
    for ws in conns:
        ws.abort()
    return {
        "sockets": sockets,
        "events_published": len(sent),
        "events_per_s": round(len(sent) / seconds, 1),
        "frames_expected": len(sent) * sockets,
        "frames_received": received,
        "pushed_frames_per_s": round(received / seconds),
        "latency_p50_ms": _percentile_ms(latencies, 0.5),
        "latency_p99_ms": _percentile_ms(latencies, 0.99),
        "read_latency_p50_ms": _percentile_ms(read_latencies, 0.5),
        "read_latency_p99_ms": _percentile_ms(read_latencies, 0.99),
        "elapsed_s": round(elapsed, 1),
        "gateway_cpu_percent": round(gateway_cpu),
        "client_cpu_percent": round(client_cpu),
    }


def _percentile_ms(values: list[float], q: float) -> float | None:
    ordered = sorted(values)
    return round(1000 * ordered[int(q * (len(ordered) - 1))], 1) if ordered else None


def run(sockets: int, rates: list[float], seconds: float) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        with running_stack(f"sqlite:///{scratch}/fanout.sqlite3", LOG_DIR, gateways=1) as stack:
            stack.worker.stop()
            for rate in rates:
                rows.append(asyncio.run(measure(stack, sockets, rate, seconds)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rate", type=float, nargs="+", default=[5.0, 30.0], help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = run(args.sockets, args.rate, args.seconds)
    print(
        "\n| sockets | events/s | pushed/s | received / expected | latency p50 / p99 | read p50 / p99 "
        "| gateway CPU | client CPU |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sockets']} | {r['events_per_s']} | {r['pushed_frames_per_s']:,} | "
            f"{r['frames_received']:,} / {r['frames_expected']:,} | "
            f"{r['latency_p50_ms']} ms / {r['latency_p99_ms']} ms | "
            f"{r['read_latency_p50_ms']} ms / {r['read_latency_p99_ms']} ms | "
            f"{r['gateway_cpu_percent']} % | {r['client_cpu_percent']} % |"
        )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
