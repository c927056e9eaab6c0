"""Benchmark: what one hop between processes costs on this machine when it has been idle.

The same odoorpc call to an Odoo stand-in in a process of its own, back to back and then
after an idle gap before each call; and a SQLite commit with its fsync. On a virtual
machine whose idle cores are slow to wake, the gaps cost more than the call itself: the
floor of the end-to-end overhead at low rates (README "Performance", item 5).

    .venv/bin/python -m tests.bench.bench_wakeup --calls 200

Figures, not assertions.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import odoorpc

from tests.bench.figures import percentile_ms
from tests.support.processes import ROOT
from tests.support.standin_process import StandinProcess

LOG_DIR = ROOT / "test-artifacts" / "logs" / "bench-wakeup"


def _timed(call: Callable[[], object], calls: int, gap: float) -> list[float]:
    call()  # warm: connections, caches
    seconds = []
    for _ in range(calls):
        if gap:
            time.sleep(gap)
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


def _sqlite_commit(conn: sqlite3.Connection) -> Callable[[], object]:
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # as the task store's
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")

    def commit() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO t (v) VALUES (?)", ("x" * 200,))
        conn.execute("COMMIT")

    return commit


def measure(calls: int, gaps: list[float]) -> list[tuple[str, float, float | None, float | None]]:
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    rows: list[tuple[str, float, float | None, float | None]] = []
    standin = StandinProcess(LOG_DIR)
    try:
        odoo = odoorpc.ODOO("127.0.0.1", port=standin.port, version="17.0")
        odoo.login("odoo", "admin", "admin")
        domain = {"domain": [["name", "=", "Demo Customer"]], "fields": ["id"], "limit": 2}

        def search() -> object:
            return odoo.execute_kw("res.partner", "search_read", [], domain)

        for gap in gaps:
            seconds = _timed(search, calls, gap)
            rows.append(("odoorpc search_read", gap, percentile_ms(seconds, 0.5), percentile_ms(seconds, 0.9)))
    finally:
        standin.stop()
    with tempfile.TemporaryDirectory() as scratch:
        conn = sqlite3.connect(Path(scratch) / "wakeup.sqlite3", isolation_level=None)
        try:
            commit = _sqlite_commit(conn)
            for gap in gaps:
                seconds = _timed(commit, calls, gap)
                rows.append(("SQLite commit (fsync)", gap, percentile_ms(seconds, 0.5), percentile_ms(seconds, 0.9)))
        finally:
            conn.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="calls per gap")
    parser.add_argument("--gap", type=float, nargs="+", default=[0.0, 0.005, 0.02, 0.05], help="idle seconds")
    args = parser.parse_args()
    print("| what | idle before each | p50 | p90 |\n|---|---|---|---|")
    for what, gap, p50, p90 in measure(args.calls, args.gap):
        print(f"| {what} | {1000 * gap:g} ms | {p50} ms | {p90} ms |")


if __name__ == "__main__":
    main()
