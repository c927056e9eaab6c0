"""``python -m tests.odoo_standin.bench --orders 20000``: how the stand-in scales with its data.

Starts the stand-in in-process and drives it with the real ``odoorpc`` client from ``--threads``
workers (one login per worker), each task being the gateway's sale-order sequence::

    sale.order.search_read [("client_order_ref", "=", "GW-<uuid>")]    (not there yet)
    res.partner.search     [("name", "=", "Demo Customer")]
    product.product.search_read [("default_code", "in", [...])]
    sale.order.create      {..., "order_line": [(0, 0, {...}), ...]}
    sale.order.search_read [("client_order_ref", "=", "GW-<uuid>")]    (found once)

With ``--inventory-every K`` every K-th task is the inventory sequence instead (``stock.move``
search by ``=like`` prefix, ``stock.location.search_read``, inventory-mode ``stock.quant.create``,
``action_apply_inventory``, ``stock.move`` search again). Every answer is checked, so the run also
fails loudly if a change breaks the semantics.

Prints calls/s, p50/p99 call latency and process CPU time per call (client and server run in this
one process; CPU time is less sensitive than wall time to other load on the machine) for the first
and the last ``--window`` tasks (by start order): a stand-in that scales shows about the same
figures for both.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import odoorpc

from .server import OdooStandin

INV_CTX = {"inventory_mode": True}


@dataclass
class TaskResult:
    index: int
    started: float
    ended: float
    cpu_started: float  # process CPU time (client and server threads together)
    cpu_ended: float
    latencies: list[float] = field(default_factory=list)  # seconds, one per RPC call


class Timed:
    """An odoorpc connection whose ``execute_kw`` calls are timed into the current task."""

    def __init__(self, odoo: Any) -> None:
        self.odoo = odoo
        self.latencies: list[float] = []

    def __call__(self, model: str, name: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        started = time.perf_counter()
        try:
            return self.odoo.execute_kw(model, name, args, kwargs or {})
        finally:
            self.latencies.append(time.perf_counter() - started)


def check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(what)


def sale_task(call: Timed, index: int) -> None:
    ref = f"GW-{uuid.uuid4()}"
    by_ref = [[("client_order_ref", "=", ref)]]
    fields = {"fields": ["name", "state", "client_order_ref", "order_line", "amount_total"]}
    check(call("sale.order", "search_read", by_ref, fields) == [], "order exists before create")
    partners = call("res.partner", "search", [[("name", "=", "Demo Customer")]])
    check(partners == [7], f"partner search gave {partners}")
    codes = [f"DEMO-{1 + index % 20:03d}", f"DEMO-{1 + (index + 7) % 20:03d}"]
    products = call(
        "product.product",
        "search_read",
        [[("default_code", "in", codes)]],
        {"fields": ["default_code", "list_price"]},
    )
    check(sorted(p["default_code"] for p in products) == sorted(codes), f"products {products}")
    lines = [(0, 0, {"product_id": p["id"], "product_uom_qty": 1 + index % 3}) for p in products]
    order_id = call("sale.order", "create", [{"partner_id": partners[0], "client_order_ref": ref, "order_line": lines}])
    found = call("sale.order", "search_read", by_ref, fields)
    check(len(found) == 1 and found[0]["id"] == order_id, f"order lookup gave {found}")
    check(len(found[0]["order_line"]) == 2 and found[0]["amount_total"] > 0, f"order {found[0]}")


def inventory_task(call: Timed, index: int) -> None:
    ref = f"GW-{uuid.uuid4()}"
    moves = [[("is_inventory", "=", True), ("name", "=like", f"{ref}%")]]
    check(call("stock.move", "search", moves) == [], "move exists before apply")
    locations = call("stock.location", "search_read", [[("complete_name", "=", "WH/Stock")]], {"fields": ["id"]})
    check([loc["id"] for loc in locations] == [8], f"locations {locations}")
    ctx = {**INV_CTX, "inventory_name": ref}
    vals = {"product_id": 1 + index % 20, "location_id": 8, "inventory_quantity": float(index % 50 + 100)}
    quant_id = call("stock.quant", "create", [vals], {"context": ctx})
    call("stock.quant", "action_apply_inventory", [[quant_id]], {"context": ctx})
    found = call("stock.move", "search", moves)
    # One move, of quantity 0 when the count equals the quantity on hand already.
    check(len(found) == 1, f"moves {found}")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def summary(label: str, results: list[TaskResult]) -> str:
    latencies = [lat for r in results for lat in r.latencies]
    wall = max(r.ended for r in results) - min(r.started for r in results)
    cpu = max(r.cpu_ended for r in results) - min(r.cpu_started for r in results)
    return (
        f"{label:<22} tasks={len(results):>6} calls={len(latencies):>7} "
        f"calls/s={len(latencies) / wall:>8.1f} "
        f"p50={percentile(latencies, 50) * 1000:>7.2f}ms p99={percentile(latencies, 99) * 1000:>7.2f}ms "
        f"cpu/call={cpu / len(latencies) * 1000:>6.2f}ms"
    )


def run(orders: int, threads: int, version: str, inventory_every: int, progress: int) -> list[TaskResult]:
    counter = itertools.count()
    counter_lock = threading.Lock()
    results: list[TaskResult] = []
    results_lock = threading.Lock()
    errors: list[BaseException] = []
    started_all = time.perf_counter()

    with OdooStandin(port=0, version=version) as standin:

        def worker() -> None:
            odoo = odoorpc.ODOO("127.0.0.1", port=standin.port, version=version, timeout=10)
            odoo.login("odoo", "admin", "admin")
            call = Timed(odoo)
            while not errors:
                with counter_lock:
                    index = next(counter)
                if index >= orders:
                    return
                call.latencies = []
                cpu_started, started = time.process_time(), time.perf_counter()
                try:
                    if inventory_every and index % inventory_every == inventory_every - 1:
                        inventory_task(call, index)
                    else:
                        sale_task(call, index)
                except BaseException as exc:
                    errors.append(exc)
                    raise
                ended, cpu_ended = time.perf_counter(), time.process_time()
                result = TaskResult(index, started, ended, cpu_started, cpu_ended, call.latencies)
                with results_lock:
                    results.append(result)
                    done = len(results)
                if progress and done % progress == 0:
                    elapsed = time.perf_counter() - started_all
                    print(f"  {done} tasks in {elapsed:.1f}s", file=sys.stderr, flush=True)

        pool = [threading.Thread(target=worker, name=f"bench-{n}") for n in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    if errors:
        raise errors[0]
    return sorted(results, key=lambda r: r.index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.odoo_standin.bench", description=__doc__)
    parser.add_argument("--orders", type=int, default=20000, help="number of tasks (default 20000)")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--window", type=int, default=1000, help="tasks in the first/last window")
    parser.add_argument("--version", default="17.0")
    parser.add_argument("--inventory-every", type=int, default=0, help="every K-th task is an inventory one")
    parser.add_argument("--progress", type=int, default=1000, help="report every N tasks on stderr (0: off)")
    args = parser.parse_args(argv)
    if args.orders < 1 or args.window < 1 or args.threads < 1:
        parser.error("--orders, --window and --threads must be positive")
    started = time.perf_counter()
    results = run(args.orders, args.threads, args.version, args.inventory_every, args.progress)
    elapsed = time.perf_counter() - started
    window = min(args.window, len(results))
    total_calls = sum(len(r.latencies) for r in results)
    print(
        f"odoo stand-in {args.version}: {len(results)} tasks, {total_calls} calls, {args.threads} threads, "
        f"{elapsed:.1f}s ({total_calls / elapsed:.1f} calls/s overall)"
    )
    print(summary(f"first {window} tasks", results[:window]))
    print(summary(f"last {window} tasks", results[-window:]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
