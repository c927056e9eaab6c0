"""The Odoo stand-in in a process of its own, driven over its ``/_standin`` HTTP API.

In a process of its own it shares no interpreter (and no GIL) with the clients of a test
or a benchmark, as a real Odoo would not: the chaos harness kills processes around it,
and ``bench_e2e --standin-process`` keeps its time out of the clients' process.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from tests.odoo_standin import FaultRule
from tests.support.processes import Proc, free_port

__all__ = ["StandinApi", "StandinProcess"]


class StandinApi:
    """The ``/_standin`` HTTP API of a stand-in at ``url``, wherever it runs."""

    def __init__(self, url: str) -> None:
        self.url = url

    def add_fault(self, rule: FaultRule | dict[str, Any]) -> None:
        body = rule.to_dict() if isinstance(rule, FaultRule) else rule
        httpx.post(f"{self.url}/_standin/faults", json=body, timeout=10).raise_for_status()

    def clear_faults(self) -> None:
        httpx.delete(f"{self.url}/_standin/faults", timeout=10).raise_for_status()

    def records(self, model: str) -> list[dict[str, Any]]:
        response = httpx.get(f"{self.url}/_standin/records/{model}", timeout=120)
        response.raise_for_status()
        rows: list[dict[str, Any]] = response.json()
        return rows


class StandinProcess(StandinApi):
    def __init__(self, log_dir: Path, version: str = "17.0", api_keys: tuple[str, ...] = (), name: str = "standin"):
        self.port = port = free_port()
        keys = [arg for key in api_keys for arg in ("--api-key", key)]
        super().__init__(f"http://127.0.0.1:{port}")
        self.proc = Proc(
            name,
            [sys.executable, "-m", "tests.odoo_standin", "--port", str(port), "--version", version, *keys],
            dict(os.environ),
            log_dir,
        )
        self._wait_up()

    def _wait_up(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.url}/_standin/faults", timeout=1)
                return
            except httpx.HTTPError:
                if not self.proc.alive():
                    break
                time.sleep(0.1)
        raise RuntimeError(f"{self.proc.name} did not come up:\n{self.proc.log()}")

    def stop(self) -> None:
        self.proc.stop()
