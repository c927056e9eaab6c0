"""A whole running system for integration tests: Odoo stand-in, RabbitMQ vhost, task
store, Dramatiq worker and gateway instances, all real processes but the stand-in."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.odoo_standin import OdooStandin
from tests.support.processes import Proc, child_pids, free_port, start_gateway, start_worker
from tests.support.services import amqp_url, create_vhost, delete_vhost
from tests.support.standin_process import StandinProcess

__all__ = [
    "ADMIN_TOKEN",
    "ODOO_APIS",
    "ODOO_API_KEY",
    "SIGNING_KEY",
    "TOKENS",
    "Stack",
    "odoo_env",
    "running_stack",
    "wait_for",
]

TOKENS = {"demo": "tok-demo", "other": "tok-other"}
#: The HMAC key test workers sign events with and test gateways verify them with.
SIGNING_KEY = "test-event-signing-key-0123456789"
#: The operators' credential for /v1/admin in tests (distinct from every tenant token).
ADMIN_TOKEN = "test-admin-token-0123456789"
ALLOWED_ORIGIN = "http://allowed.example"
#: The worker user's API key in the stand-in, for the JSON-2 stacks.
ODOO_API_KEY = "test-odoo-api-key-0123456789"
#: The Odoo APIs a stack can speak: JSON-RPC (odoorpc) on Odoo 17, JSON-2 on Odoo 19.
ODOO_APIS = ("jsonrpc", "json2")


def odoo_env(odoo_api: str) -> tuple[str, dict[str, str]]:
    """(the stand-in's Odoo version, the workers' Odoo settings) for ``odoo_api``. The JSON-2
    workers get no password: they must work with the API key alone, and never log in."""
    if odoo_api == "jsonrpc":
        return "17.0", {"ODOO_API": "jsonrpc", "ODOO_USER": "admin", "ODOO_PASSWORD": "admin", "ODOO_API_KEY": ""}
    if odoo_api in ("json2", "auto"):
        return "19.0", {"ODOO_API": odoo_api, "ODOO_USER": "admin", "ODOO_PASSWORD": "", "ODOO_API_KEY": ODOO_API_KEY}
    raise ValueError(f"unknown Odoo API {odoo_api!r}")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


@dataclass
class Stack:
    env: dict[str, str]
    standin: OdooStandin | StandinProcess
    log_dir: Path
    worker: Proc
    gateways: list[tuple[Proc, str]] = field(default_factory=list)
    odoo_api: str = "jsonrpc"

    @property
    def base(self) -> str:
        return self.gateways[0][1]

    @property
    def ws(self) -> str:
        return self.base.replace("http://", "ws://") + "/v1/ws"

    def ws_of(self, index: int) -> str:
        return self.gateways[index][1].replace("http://", "ws://") + "/v1/ws"

    @staticmethod
    def headers(principal: str = "demo", key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {TOKENS[principal]}"}
        if key is not None:
            headers["Idempotency-Key"] = key
        return headers

    def restart_gateway(self, name: str = "gateway-restarted") -> Proc:
        """Stop the first gateway (if it still runs: SIGTERM) and start a new one on its port."""
        proc, base = self.gateways[0]
        proc.stop()
        new, _ = start_gateway(self.env, self.log_dir, port=int(base.rsplit(":", 1)[1]), name=name)
        self.gateways[0] = (new, base)
        return new

    def restart_worker(self) -> None:
        self.worker.stop()
        self.worker = start_worker(self.env, self.log_dir)

    def kill_worker_child(self) -> None:
        """SIGKILL the Dramatiq worker process (not the master), as the OOM killer would."""
        children = child_pids(self.worker.pid)
        assert children, "dramatiq master has no worker child"
        for pid in children:
            os.kill(pid, signal.SIGKILL)

    def task(self, task_id: str, principal: str = "demo") -> dict[str, Any]:
        response = httpx.get(f"{self.base}/v1/tasks/{task_id}", headers=self.headers(principal), timeout=10)
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def wait_final(self, task_id: str, timeout: float = 60.0) -> dict[str, Any]:
        def final() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["status"] in ("succeeded", "failed") else None

        result: dict[str, Any] = wait_for(final, timeout, f"task {task_id} to end")
        return result

    def logs(self) -> str:
        parts = [f"--- {p.name}\n{p.log()}" for p, _ in self.gateways]
        return "\n".join([*parts, f"--- worker\n{self.worker.log()}"])


@contextmanager
def running_stack(
    database_url: str,
    log_dir: Path,
    gateways: int = 1,
    odoo_api: str = "jsonrpc",
    *,
    standin_process: bool = False,
    **overrides: str,
) -> Iterator[Stack]:
    """``odoo_api``: "jsonrpc" (an Odoo 17 stand-in, odoorpc), "json2" (Odoo 19, API key) or
    "auto" (Odoo 19, the worker picks). ``standin_process``: the stand-in in a process of
    its own (``StandinProcess``: faults and records over its HTTP API only), instead of
    threads of this one."""
    log_dir.mkdir(parents=True, exist_ok=True)
    version, odoo_settings = odoo_env(odoo_api)
    standin: OdooStandin | StandinProcess = (
        StandinProcess(log_dir, version, (ODOO_API_KEY,))
        if standin_process
        else OdooStandin(port=0, version=version, api_keys=(ODOO_API_KEY,)).start()
    )
    vhost = create_vhost()
    env = {
        **os.environ,
        "AMQP_URL": amqp_url(vhost),
        "DATABASE_URL": database_url,
        "ODOO_URL": standin.url,
        "ODOO_DB": "odoo",
        **odoo_settings,
        "ODOO_TIMEOUT": "3",
        "GATEWAY_TOKENS": ",".join(f"{t}={p}" for p, t in TOKENS.items()),
        "EVENT_SIGNING_KEY": SIGNING_KEY,
        # Every test shares 127.0.0.1, and several send wrong tokens on purpose: throttling
        # is tested on a stack of its own (tests/attack).
        "GATEWAY_AUTH_FAILURES_PER_MINUTE": "1000",
        "GATEWAY_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
        "GATEWAY_PUBLISH_TIMEOUT": "3",
        "GATEWAY_WS_AUTH_TIMEOUT": "1.5",
        "TASK_MIN_BACKOFF": "0.2",
        "TASK_MAX_BACKOFF": "1",
        "TASK_MAX_ATTEMPTS": "5",
        "TASK_LEASE_SECONDS": "2",
        "LOG_LEVEL": "INFO",
        # Graceful shutdown waits this long for load balancers; tests have none.
        "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "0.3",
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        # Each stack's workers serve their metrics on a port of their own.
        "WORKER_METRICS_PORT": str(free_port()),
        "PYTHONUNBUFFERED": "1",
        **overrides,
    }
    procs: list[Proc] = []
    stack: Stack | None = None
    try:
        worker = start_worker(env, log_dir)
        procs.append(worker)
        stack = Stack(env=env, standin=standin, log_dir=log_dir, worker=worker, odoo_api=odoo_api)
        for index in range(gateways):
            proc, base = start_gateway(env, log_dir, name=f"gateway{index}")
            procs.append(proc)
            stack.gateways.append((proc, base))
        yield stack
    finally:
        if stack is not None:
            procs = [stack.worker, *(p for p, _ in stack.gateways)]
        for proc in procs:
            proc.stop()
        standin.stop()
        delete_vhost(vhost)
