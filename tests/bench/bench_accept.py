"""Benchmark: the durable accept path against the broker's own confirmed-publish rate.

In one run, per store: a raw aio-pika loop publishing persistent, mandatory, confirmed
messages with 64 in flight to the same RabbitMQ (the ceiling), then ``wrk`` (one thread,
64 connections) POSTing submissions to a gateway running alone (its worker stopped), then
sequential submissions for the unloaded latency. Prints the ratio table; ``--json`` too.

    .venv/bin/python -m tests.bench.bench_accept --seconds 10 --store both

Figures, not assertions (see README "Performance, measured").
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import httpx

from tests.support.processes import ROOT
from tests.support.services import create_pg_database, drop_pg_database
from tests.support.stack import TOKENS, running_stack

LOG_DIR = ROOT / "test-artifacts" / "logs" / "bench-accept"
BODY = json.dumps(
    {"kind": "inventory.adjust", "payload": {"location": "WH/Stock", "lines": [{"product": "DEMO-001", "quantity": 3}]}}
)
WRK_SCRIPT = """
local counter = 0
local prefix = "%s-" .. tostring(os.time()) .. "-" .. tostring(math.floor(os.clock() * 1000000))
wrk.method = "POST"
wrk.body = [[%s]]
wrk.headers["Authorization"] = "Bearer %s"
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  wrk.headers["Idempotency-Key"] = prefix .. "-" .. counter
  return wrk.format()
end
"""


async def raw_publish_rate(amqp_url: str, seconds: float, in_flight: int = 64) -> float:
    """Persistent, mandatory, confirmed publishes per second with ``in_flight`` outstanding."""
    connection = await aio_pika.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(f"bench-raw-{uuid.uuid4().hex[:8]}", durable=True)
        body = BODY.encode()
        done = 0
        deadline = time.monotonic() + seconds

        async def publisher() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                message = aio_pika.Message(
                    body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT, message_id=uuid.uuid4().hex
                )
                await channel.default_exchange.publish(message, routing_key=queue.name, mandatory=True)
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(publisher() for _ in range(in_flight)))
        rate = done / (time.monotonic() - started)
        await queue.delete(if_unused=False, if_empty=False)
        return rate
    finally:
        await connection.close()


def wrk_accepts(base: str, seconds: float, connections: int = 64) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % (uuid.uuid4().hex[:8], BODY, TOKENS["demo"]))
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", script.name, f"{base}/v1/tasks"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)

    def latency(pct: str) -> float:
        value, unit = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]

    return {
        "accepts_per_s": rate,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
        "socket_errors": errors.group(1) if errors else None,
    }


def sequential_p50_ms(base: str, count: int = 200) -> float:
    timings = []
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKENS['demo']}"}, timeout=10) as http:
        for _ in range(count):
            started = time.perf_counter()
            response = http.post(
                "/v1/tasks",
                content=BODY,
                headers={"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"},
            )
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 202, response.text
    return sorted(timings)[len(timings) // 2]


def measure(store: str, seconds: float, workers: int) -> dict[str, Any]:
    pg_url = create_pg_database() if store == "postgres" else None
    with tempfile.TemporaryDirectory() as scratch:
        url = pg_url or f"sqlite:///{scratch}/bench.sqlite3"
        try:
            with running_stack(url, LOG_DIR / store, gateways=1, GATEWAY_WORKERS=str(workers)) as stack:
                stack.worker.stop()  # the gateway alone, as the issue measures it
                sequential_p50_ms(stack.base, 20)  # warm up
                raw = asyncio.run(raw_publish_rate(stack.env["AMQP_URL"], seconds))
                loaded = wrk_accepts(stack.base, seconds)
                sequential = sequential_p50_ms(stack.base)
        finally:
            if pg_url:
                drop_pg_database(pg_url)
    return {
        "store": store,
        "gateway_processes": workers,
        "raw_confirmed_publishes_per_s": raw,
        **loaded,
        "ratio": loaded["accepts_per_s"] / raw,
        "sequential_p50_ms": sequential,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--store", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--workers", type=int, default=1, help="gateway processes (GATEWAY_WORKERS)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: `apt-get install -y wrk` (make bench installs it)")
    stores = ["sqlite", "postgres"] if args.store == "both" else [args.store]
    rows = [measure(store, args.seconds, args.workers) for store in stores]
    print(
        "\n| store | raw confirmed publishes/s | gateway 202/s | ratio | p50 / p99 at c=64 | sequential p50 | non-2xx |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['store']} | {r['raw_confirmed_publishes_per_s']:,.0f} | {r['accepts_per_s']:,.0f} "
            f"| {r['ratio']:.2f} | "
            f"{r['p50_ms']:.1f} ms / {r['p99_ms']:.1f} ms | {r['sequential_p50_ms']:.1f} ms | {r['non_2xx']} |"
        )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
