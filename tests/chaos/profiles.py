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
        # 8,000 counts in 10 minutes: on 5 products that is 2.7 counts/s of each, sustained,
        # more than one record can take when its counts run one at a time at Odoo's speed
        # under these faults (~7/s measured in the short profile). 20 products keep every
        # product counted by many devices at once (~0.7/s each) at a rate a record can drain.
        hot_products=20,
    ),
}
