"""How hard a chaos run pushes: the short profile runs in ``make test`` (under 5 minutes),
the full one is ``make chaos``."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PROFILES", "Profile"]


@dataclass(frozen=True)
class Profile:
    name: str
    tasks: int  # submissions, across all clients
    clients: int  # simulated field devices
    http_share: float  # share of clients that only poll over HTTP
    submit_seconds: float  # over how long the submissions are spread
    worker_kill_every: float  # seconds between SIGKILLs of a worker process
    client_restarts: int  # restarts per client (from its outbox file)
    drain_seconds: float  # after healing, how long every task may take to end
    worker_threads: int = 8
    inventory_share: float = 0.4  # share of submissions that are inventory counts (the rest: sale orders)
    hot_products: int = 5  # counts go to DEMO-001 .. DEMO-00n at WH/Stock, so devices count the same ones
    # Each worker (re)start takes the next Odoo API in turn, against an Odoo 19 stand-in that
    # speaks both: a run covers both adapters, and tasks that change adapter mid-way.
    odoo_apis: tuple[str, ...] = ("jsonrpc", "json2")


PROFILES = {
    "short": Profile(
        name="short",
        tasks=2000,
        clients=20,
        http_share=0.3,
        submit_seconds=75,
        worker_kill_every=10,
        client_restarts=1,
        drain_seconds=150,
    ),
    "full": Profile(
        name="full",
        tasks=20000,
        clients=50,
        http_share=0.3,
        submit_seconds=600,
        worker_kill_every=10,
        client_restarts=3,
        drain_seconds=600,
        # Counts of one record run one at a time, and a count holding several records links
        # their queues, so the hot products drain at most at Odoo's speed for one task at a
        # time under these faults: 4.5 counts/s measured here (the head of a queue stalls for
        # each fault, for a whole lease after an ambiguous one). 40 % of 20,000 (8,000 counts
        # in 10 minutes) cannot drain at that rate, on 5 products or on 20; 12 % (2,400) on
        # 20 products is still counted by many devices at once, and can.
        inventory_share=0.12,
        hot_products=20,
    ),
}
