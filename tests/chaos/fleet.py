"""Simulated field devices: the project's own Python client, each with its outbox file,
submitting over WebSocket or polling over HTTP, restarted from their outbox mid-run,
and a replayer that submits again what was already accepted (same key, same body).

What they submit (:class:`Workload`): sale orders, and a share of inventory counts at
WH/Stock of a few hot products, so that several devices count the same products at the
same time (the tasks on one quant must take effect one at a time, in acceptance order).
Counted quantities are random, and sometimes repeat the latest count of that product, so
counts equal to the stock (no-ops in Odoo) happen too; a count has one line, sometimes
two or three (a task holding several records)."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from odoo_gateway_client import GatewayClient, GatewayClientError, TaskHandle
from tests.chaos.checker import INVENTORY_KIND, SALE_KIND, Observations
from tests.support.stack import TOKENS

__all__ = ["FieldDevice", "Replayer", "Workload"]

TOKEN = TOKENS["demo"]
COUNT_LOCATION = "WH/Stock"


@dataclass
class Workload:
    """The mix of submissions, shared by every device of a run (``recent`` is the latest
    count of each hot product submitted by any device)."""

    inventory_share: float = 0.4  # share of submissions that are inventory counts
    hot_products: int = 5  # DEMO-001 .. DEMO-00n: the products every device counts
    repeat_share: float = 0.25  # share of counted lines that repeat the product's latest count
    max_quantity: int = 200
    recent: dict[str, int] = field(default_factory=dict)

    def next(self, rng: random.Random) -> tuple[str, dict[str, Any]]:
        if rng.random() < self.inventory_share:
            return INVENTORY_KIND, self.count(rng)
        return SALE_KIND, {
            "customer": "Demo Customer",
            "lines": [{"product": f"DEMO-{rng.randint(1, 20):03d}", "quantity": rng.randint(1, 50)}],
        }

    def count(self, rng: random.Random) -> dict[str, Any]:
        hot = [f"DEMO-{n:03d}" for n in range(1, self.hot_products + 1)]
        size = min(len(hot), rng.choices((1, 2, 3), weights=(70, 20, 10))[0])
        lines = []
        for product in rng.sample(hot, size):
            if product in self.recent and rng.random() < self.repeat_share:
                quantity = self.recent[product]
            else:
                quantity = rng.randint(0, self.max_quantity)
            self.recent[product] = quantity
            lines.append({"product": product, "quantity": quantity})
        return {"location": COUNT_LOCATION, "lines": lines}


class FieldDevice:
    def __init__(
        self,
        index: int,
        base_url: str,
        outbox: Path,
        *,
        http_only: bool,
        obs: Observations,
        finals: list[float],
        workload: Workload,
    ) -> None:
        self.index = index
        self.base_url = base_url
        self.outbox = outbox
        self.http_only = http_only
        self.obs = obs
        self.finals = finals  # completion times, for recovery figures
        self.workload = workload
        self.sent: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (kind, payload)
        self.client = self._new_client()
        self.restarts = 0
        self._followers: set[asyncio.Task[None]] = set()

    def _new_client(self) -> GatewayClient:
        return GatewayClient(
            self.base_url,
            TOKEN,
            self.outbox,
            prefer_http=self.http_only,
            backoff_base=0.2,
            backoff_cap=3.0,
            poll_interval=0.5,
            ping_interval=5.0,
            ping_timeout=5.0,
            http_timeout=10.0,
            open_timeout=5.0,
        )

    def _follow(self, handle: TaskHandle) -> None:
        task = asyncio.create_task(self._watch(handle))
        self._followers.add(task)
        task.add_done_callback(self._followers.discard)

    async def _watch(self, handle: TaskHandle) -> None:
        try:
            task_id = await handle.accepted()
            if handle.key is not None:
                self.obs.acknowledged[handle.key] = task_id
            final = await handle.result()
            self.obs.seen_final[task_id] = final.status
            self.finals.append(time.monotonic())
        except GatewayClientError:
            pass  # the client was restarted; the new one follows the row from its outbox

    async def submit_all(self, count: int, seconds: float, rng: random.Random, restart_at: list[float]) -> None:
        started = time.monotonic()
        times = sorted(rng.uniform(0, seconds) for _ in range(count))
        restarts = sorted(restart_at)
        for at in times:
            while restarts and restarts[0] <= at:
                await self._sleep_until(started + restarts.pop(0))
                await self.restart()
            await self._sleep_until(started + at)
            key = str(uuid.uuid4())
            kind, payload = self.workload.next(rng)
            self.sent[key] = (kind, payload)
            self.obs.sent[key] = (kind, payload)
            handle = await self.client.submit(kind, payload, idempotency_key=key)
            self.obs.submitted.add(key)
            self._follow(handle)

    async def restart(self) -> None:
        """Stop the client abruptly (its outbox keeps what was not acknowledged or not seen
        to end), then start a new one on the same file, as a restarted device would."""
        await self.client.close()
        self.client = self._new_client()
        self.restarts += 1
        for handle in self.client.pending():
            self._follow(handle)
        await self.client.start()

    async def drain(self, deadline: float) -> None:
        while self._followers and time.monotonic() < deadline:
            await asyncio.wait(set(self._followers), timeout=max(0.1, deadline - time.monotonic()))

    async def close(self) -> None:
        for task in list(self._followers):
            task.cancel()
        await self.client.close()

    @staticmethod
    async def _sleep_until(when: float) -> None:
        delay = when - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


class Replayer:
    """Submits again, straight over HTTP, what a device already had accepted: the gateway
    must answer with the same task id and publish nothing new."""

    def __init__(self, devices: list[FieldDevice], gateways: list[str], obs: Observations) -> None:
        self.devices = devices
        self.gateways = gateways
        self.obs = obs
        self.replayed = 0

    async def run(self, stop: asyncio.Event, rng: random.Random) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while not stop.is_set():
                await asyncio.sleep(0.2)
                device = rng.choice(self.devices)
                accepted = [k for k in device.sent if k in self.obs.acknowledged]
                if not accepted:
                    continue
                key = rng.choice(accepted)
                kind, payload = device.sent[key]
                try:
                    response = await http.post(
                        f"{rng.choice(self.gateways)}/v1/tasks",
                        headers={"Authorization": f"Bearer {TOKEN}", "Idempotency-Key": key},
                        json={"kind": kind, "payload": payload},
                    )
                except httpx.HTTPError:
                    continue  # the link or the gateway is down: not a verdict
                if response.status_code != 202:
                    continue  # 503 while the broker or store is down
                self.replayed += 1
                replayed_id = response.json()["task_id"]
                if replayed_id != self.obs.acknowledged[key]:
                    self.obs.replay_mismatches.append((key, self.obs.acknowledged[key], replayed_id))
