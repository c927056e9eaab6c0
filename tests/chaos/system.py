"""The system under test for a chaos run, and the faults that can be done to it.

Everything is a real process but the TCP proxies (clients reach each gateway through one,
like through a load balancer; it fails over when its gateway dies): the Odoo stand-in
(its own process, driven over its control endpoints), two gateways on one PostgreSQL
store, Dramatiq workers under a supervisor that restarts them, and this machine's
RabbitMQ, in a vhost of its own, stopped and killed for real.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.chaos.checker import InventoryMove, StockKey, StoredTask
from tests.support.processes import Proc, child_pids, start_gateway
from tests.support.proxy import FaultProxy
from tests.support.services import amqp_url, create_pg_database, create_vhost, delete_vhost, drop_pg_database
from tests.support.stack import ODOO_API_KEY, SIGNING_KEY, TOKENS, odoo_env
from tests.support.standin_process import StandinApi, StandinProcess

__all__ = ["ChaosSystem", "WorkerSupervisor", "broker_hard_kill", "broker_stop_start"]


class WorkerSupervisor:
    """Restarts the Dramatiq master whenever it exits, as systemd or compose would: the
    master stops all its processes when one of them is killed.

    ``odoo_apis``: each start takes the next Odoo API in turn (``ODOO_API``), so one run
    covers every adapter, and tasks begun on one API are finished (looked up, retried) on the
    other after a kill."""

    def __init__(
        self, env: dict[str, str], log_dir: Path, threads: int, odoo_apis: tuple[str, ...] = ("jsonrpc",)
    ) -> None:
        self._cmd = [
            sys.executable,
            "-m",
            "dramatiq",
            "workers.actors",
            "--processes",
            "1",
            "--threads",
            str(threads),
        ]
        self._env = env
        self._log_dir = log_dir
        self._odoo_apis = odoo_apis
        self.proc: Proc | None = None
        self.starts = 0
        self.starts_by_api: dict[str, int] = dict.fromkeys(odoo_apis, 0)
        self._running = False
        self._thread = threading.Thread(target=self._loop, name="worker-supervisor", daemon=True)

    def start(self) -> None:
        self._running = True
        self._thread.start()

    def _loop(self) -> None:
        while self._running:
            if self.proc is None or not self.proc.alive():
                api = self._odoo_apis[self.starts % len(self._odoo_apis)]
                env = {**self._env, **odoo_env(api)[1]}
                self.proc = Proc(f"chaos-worker{self.starts}-{api}", self._cmd, env, self._log_dir)
                self.starts += 1
                self.starts_by_api[api] += 1
            time.sleep(0.2)

    def kill_child(self) -> bool:
        """SIGKILL the worker process (not the master), as the OOM killer would."""
        proc = self.proc
        if proc is None:
            return False
        children = child_pids(proc.pid)
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return bool(children)

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=5)
        if self.proc is not None:
            self.proc.stop(timeout=30)


def _rabbitmqctl(*args: str, timeout: float = 120) -> str:
    done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.strip()


def broker_stop_start(pause: float) -> None:
    """Stop the RabbitMQ application (connections drop, the node stays), then start it."""
    _rabbitmqctl("stop_app")
    time.sleep(pause)
    _rabbitmqctl("start_app")
    _rabbitmqctl("await_startup")


def broker_hard_kill() -> None:
    """SIGKILL the broker's Erlang VM, then start it again the way this machine does."""
    pid = int(_rabbitmqctl("eval", "os:getpid().").strip('"'))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    subprocess.run(["rabbitmq-server", "-detached"], check=True, capture_output=True, timeout=60)
    deadline = time.monotonic() + 120
    while True:
        try:
            _rabbitmqctl("await_startup", timeout=60)
            return
        except (RuntimeError, subprocess.TimeoutExpired):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


class ChaosSystem:
    def __init__(
        self, log_dir: Path, *, worker_threads: int, gateways: int = 2, odoo_apis: tuple[str, ...] = ("jsonrpc",)
    ) -> None:
        self.log_dir = log_dir
        self.odoo_apis = odoo_apis
        self.worker_threads = worker_threads
        self.gateway_count = gateways
        self.database_url = ""
        self.vhost = ""
        self.env: dict[str, str] = {}
        self.standin: StandinProcess | None = None
        self.standin_url = ""
        self.gateways: list[Proc | None] = []
        self.ports: list[int] = []
        self.proxies: list[FaultProxy] = []
        self.workers: WorkerSupervisor | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        # An Odoo 19 stand-in speaks both /jsonrpc and /json/2; JSON-RPC alone runs on 17.
        version = "19.0" if "json2" in self.odoo_apis else "17.0"
        self.standin = StandinProcess(self.log_dir, version, (ODOO_API_KEY,), name="chaos-standin")
        self.standin_url = self.standin.url
        self.database_url = create_pg_database()
        self.vhost = create_vhost()
        self.env = {
            **os.environ,
            "AMQP_URL": amqp_url(self.vhost),
            "DATABASE_URL": self.database_url,
            "ODOO_URL": self.standin_url,
            "ODOO_DB": "odoo",
            "ODOO_VERSION": version,
            "ODOO_USER": "admin",
            "ODOO_PASSWORD": "admin",
            # Short Odoo timeouts make latency spikes ambiguous; the lease outlives them.
            "ODOO_TIMEOUT": "2",
            "TASK_LEASE_SECONDS": "6",
            "TASK_MAX_ATTEMPTS": "60",
            "TASK_MIN_BACKOFF": "0.2",
            "TASK_MAX_BACKOFF": "2",
            "GATEWAY_TOKENS": ",".join(f"{t}={p}" for p, t in TOKENS.items()),
            "EVENT_SIGNING_KEY": SIGNING_KEY,
            "GATEWAY_PUBLISH_TIMEOUT": "3",
            # No load balancer to wait for: a stopped gateway closes its sockets at once.
            "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "0.5",
            # Several worker processes on one host: no metrics port to share.
            "WORKER_METRICS_PORT": "0",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        self.workers = WorkerSupervisor(self.env, self.log_dir, self.worker_threads, self.odoo_apis)
        self.workers.start()
        for index in range(self.gateway_count):
            proc, base = start_gateway(self.env, self.log_dir, name=f"chaos-gateway{index}")
            self.gateways.append(proc)
            self.ports.append(int(base.rsplit(":", 1)[1]))
            self.proxies.append(FaultProxy("127.0.0.1", self.ports[-1]).start())

    def stop(self) -> None:
        for proxy in self.proxies:
            proxy.stop()
        for gateway in self.gateways:
            if gateway is not None:
                gateway.stop()
        if self.workers is not None:
            self.workers.stop()
        if self.standin is not None:
            self.standin.stop()
        if self.vhost:
            delete_vhost(self.vhost)
        if self.database_url:
            drop_pg_database(self.database_url)

    # -- faults ---------------------------------------------------------------------------

    def kill_gateway(self, index: int) -> None:
        """SIGKILL a gateway with clients connected; its proxy fails over to another one."""
        gateway = self.gateways[index]
        assert gateway is not None
        gateway.kill()
        self.gateways[index] = None
        survivor = next(i for i, g in enumerate(self.gateways) if g is not None)
        self.proxies[index].set_target("127.0.0.1", self.ports[survivor])
        self.proxies[index].cut()

    def restart_gateway(self, index: int) -> None:
        proc, _ = start_gateway(
            self.env, self.log_dir, port=self.ports[index], name=f"chaos-gateway{index}-r", ready=False
        )
        self.gateways[index] = proc
        self.proxies[index].set_target("127.0.0.1", self.ports[index])

    def add_odoo_fault(self, rule: dict[str, Any]) -> None:
        StandinApi(self.standin_url).add_fault(rule)

    def clear_odoo_faults(self) -> None:
        StandinApi(self.standin_url).clear_faults()

    def ready(self) -> bool:
        try:
            return all(
                httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200
                for port, gateway in zip(self.ports, self.gateways, strict=True)
                if gateway is not None
            )
        except httpx.HTTPError:
            return False

    # -- what is where, at the end ----------------------------------------------------------

    def _records(self, model: str) -> list[dict[str, Any]]:
        # By its URL: the checker's own tests point it at an in-process stand-in.
        return StandinApi(self.standin_url).records(model)

    def odoo_orders(self) -> dict[str, list[int]]:
        orders: dict[str, list[int]] = {}
        for row in self._records("sale.order"):
            ref = row.get("client_order_ref") or ""
            if ref.startswith("GW-"):
                orders.setdefault(ref[3:], []).append(row["id"])
        return orders

    def odoo_inventory(self) -> tuple[list[InventoryMove], dict[StockKey, float]]:
        """Odoo's side of the counts, read from the stand-in's records: every done inventory
        move (named as Odoo named it, signed into or out of the counted location), and the
        stock of every (internal location, product) from its quants."""
        locations = {row["id"]: row for row in self._records("stock.location")}
        codes = {
            row["id"]: row.get("default_code") or f"product {row['id']}" for row in self._records("product.product")
        }
        counted = {loc_id for loc_id, row in locations.items() if row.get("usage") in ("internal", "transit")}
        stock: dict[StockKey, float] = {}
        for quant in self._records("stock.quant"):
            location = _many2one(quant["location_id"])
            if location in counted:
                key = (locations[location]["complete_name"], codes[_many2one(quant["product_id"])])
                stock[key] = stock.get(key, 0.0) + float(quant.get("quantity") or 0.0)
        moves: list[InventoryMove] = []
        for row in self._records("stock.move"):
            if not row.get("is_inventory") or row.get("state") != "done":
                continue
            # The done quantity: ``quantity`` on Odoo 17+, ``quantity_done`` before.
            done = row.get("quantity", row.get("quantity_done"))
            quantity = float(done if done is not None else row.get("product_uom_qty") or 0.0)
            source, dest = _many2one(row["location_id"]), _many2one(row["location_dest_id"])
            if dest in counted:  # from the inventory-loss location: the count was above the stock
                location, signed = dest, quantity
            elif source in counted:  # also the empty move of a count equal to the stock
                location, signed = source, -quantity if quantity else 0.0
            else:
                continue
            moves.append(
                InventoryMove(
                    id=int(row["id"]),
                    name=str(row.get("name") or ""),
                    location=str(locations[location]["complete_name"]),
                    product=codes[_many2one(row["product_id"])],
                    quantity=signed,
                )
            )
        return moves, stock

    def store(self) -> dict[str, StoredTask]:
        with psycopg.connect(self.database_url) as conn:
            rows = conn.execute("SELECT id, status, result, accept_order, kind, payload, error FROM tasks").fetchall()
        return {
            row[0]: StoredTask(
                status=row[1],
                result=json.loads(row[2]) if row[2] else None,
                accept_order=int(row[3] or 0),
                kind=row[4],
                payload=json.loads(row[5]) if row[5] else None,
                error=json.loads(row[6]) if row[6] else None,
            )
            for row in rows
        }


def _many2one(value: Any) -> int:
    """A many2one as the stand-in stores it (an id) or as Odoo reads it ([id, name])."""
    return int(value[0] if isinstance(value, list | tuple) else value)


def random_odoo_fault(rng: random.Random) -> dict[str, Any]:
    """One transient or ambiguous Odoo fault on one of the calls a task makes."""
    target = rng.choice(
        [("sale.order", "create")] * 4
        + [("sale.order", "search_read"), ("res.partner", "search_read"), ("product.product", "search_read")]
        # The two writes of a count, the reads that find its effect and prove it.
        + [("stock.quant", "create")] * 2
        + [("stock.quant", "action_apply_inventory")] * 3
        + [("stock.move", "search_read"), ("stock.quant", "search_read"), ("stock.location", "search_read")]
    )
    kind = rng.choice(["error", "http_502", "http_503", "reset", "delay_before", "delay_after", "commit_then_drop"])
    rule: dict[str, Any] = {"model": target[0], "method": target[1], "times": rng.randint(1, 3)}
    if kind == "error":
        rule |= {
            "kind": "error",
            "error_name": rng.choice(
                [
                    "psycopg2.errors.SerializationFailure",
                    "odoo.exceptions.LockError",
                    "psycopg2.errors.DeadlockDetected",
                ]
            ),
        }
    elif kind.startswith("http_"):
        rule |= {"kind": "http_status", "status": int(kind[5:])}
    elif kind.startswith("delay_"):
        # Up to 3 s: longer than ODOO_TIMEOUT (2 s), so the worker gives up while Odoo may
        # still commit; shorter than TASK_LEASE_SECONDS (6 s), the documented window.
        rule |= {"kind": "delay", "seconds": round(rng.uniform(0.3, 3.0), 2), "phase": kind[6:]}
    else:
        rule |= {"kind": kind}
    return rule
