"""Benchmark: idle authenticated WebSockets held by one gateway process. Opens N sockets
(lean raw clients, ``--in-flight`` handshakes at a time), has each ping once so its session
is fully set up, then reads the gateway's RSS: KiB per socket, and any socket refused.

    .venv/bin/python -m tests.bench.bench_sockets --sockets 10000 19000

The gateway's fd limit is the machine's (``ulimit -n``, 20,000 here); each count runs on a
fresh gateway. Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from typing import Any

from tests.bench.figures import percentile_ms, rss_kib
from tests.bench.lean_ws import LeanWebSocket
from tests.support.processes import ROOT
from tests.support.stack import running_stack

LOG_DIR = ROOT / "test-artifacts" / "logs" / "bench-sockets"


async def _hold(host: str, port: int, count: int, in_flight: int, gateway_pid: int) -> dict[str, Any]:
    gate = asyncio.Semaphore(in_flight)
    opened: list[LeanWebSocket] = []
    errors: dict[str, int] = {}
    setup: list[float] = []

    async def one() -> None:
        started = time.perf_counter()
        try:
            async with gate:
                ws = await LeanWebSocket.connect(host, port)
            opened.append(ws)
            ws.send_text('{"type":"ping"}')
            await ws.read_until(b'"pong"')
            setup.append(time.perf_counter() - started)
        except (OSError, asyncio.IncompleteReadError, ConnectionError) as exc:
            errors[f"{type(exc).__name__}: {exc}"] = errors.get(f"{type(exc).__name__}: {exc}", 0) + 1

    before = rss_kib(gateway_pid)
    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(count)))
    open_seconds = time.perf_counter() - started
    await asyncio.sleep(2.0)  # let allocations settle
    after = rss_kib(gateway_pid)
    for ws in opened:
        ws.abort()
    return {
        "sockets": count,
        "held": len(setup),
        "errors": errors,
        "open_seconds": round(open_seconds, 2),
        "setup_p99_ms": percentile_ms(setup, 0.99),
        "gateway_rss_before_mib": round(before / 1024, 1),
        "gateway_rss_after_mib": round(after / 1024, 1),
        "kib_per_socket": round((after - before) / max(1, len(setup)), 1),
    }


def measure(counts: list[int], in_flight: int) -> list[dict[str, Any]]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # this process holds the client ends
    rows = []
    overrides = {"GATEWAY_MAX_SOCKETS_PER_TENANT": "0", "LOG_LEVEL": "WARNING"}  # 0: no per-tenant bound
    with tempfile.TemporaryDirectory() as scratch:
        with running_stack(f"sqlite:///{scratch}/sockets.sqlite3", LOG_DIR, gateways=1, **overrides) as stack:
            stack.worker.stop()
            for count in counts:
                # A fresh gateway per count: RSS is not the high-water mark of the last.
                proc = stack.restart_gateway(name=f"gateway-{count}")
                port = int(stack.base.rsplit(":", 1)[1])
                rows.append(asyncio.run(_hold("127.0.0.1", port, count, in_flight, proc.pid)))
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| sockets | held | refused or failed | time to open | RSS before → after | KiB per socket |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['sockets']:,} | {r['held']:,} | {sum(r['errors'].values())} | {r['open_seconds']} s | "
            f"{r['gateway_rss_before_mib']} → {r['gateway_rss_after_mib']} MiB | {r['kib_per_socket']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sockets", type=int, nargs="+", default=[10_000, 19_000])
    parser.add_argument("--in-flight", type=int, default=500, help="handshakes in flight at once")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = measure(args.sockets, args.in_flight)
    print(table(rows))
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
