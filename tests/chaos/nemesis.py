"""The faults of a chaos run, on a schedule, each recorded with when it began and healed."""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field

from tests.chaos.system import ChaosSystem, broker_hard_kill, broker_stop_start, random_odoo_fault

__all__ = ["Fault", "Nemesis"]


@dataclass
class Fault:
    name: str
    began: float
    healed: float = 0.0
    detail: str = ""


@dataclass
class Nemesis:
    system: ChaosSystem
    rng: random.Random
    worker_kill_every: float
    log: list[Fault] = field(default_factory=list)

    def _record(self, name: str, detail: str = "") -> Fault:
        fault = Fault(name, time.monotonic(), detail=detail)
        self.log.append(fault)
        return fault

    async def run(self, seconds: float, stop: asyncio.Event) -> None:
        """All fault loops at once for ``seconds``; then everything is healed."""
        loops = [
            self._worker_kills(stop),
            self._odoo_faults(stop),
            self._link_faults(stop),
            self._broker_and_gateway(seconds, stop),
        ]
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
        except TimeoutError:
            pass
        stop.set()
        await asyncio.gather(*tasks)
        self.heal()

    def heal(self) -> None:
        self.system.clear_odoo_faults()
        for proxy in self.system.proxies:
            proxy.blackhole(False)
            proxy.set_latency(0.0)
            proxy.set_bandwidth(None)

    async def _sleep(self, seconds: float, stop: asyncio.Event) -> bool:
        try:
            await asyncio.wait_for(stop.wait(), timeout=seconds)
            return False
        except TimeoutError:
            return True

    async def _worker_kills(self, stop: asyncio.Event) -> None:
        assert self.system.workers is not None
        while await self._sleep(self.worker_kill_every * self.rng.uniform(0.7, 1.3), stop):
            if self.system.workers.kill_child():
                fault = self._record("worker SIGKILL")
                fault.healed = fault.began

    async def _odoo_faults(self, stop: asyncio.Event) -> None:
        while await self._sleep(0.5, stop):
            rule = random_odoo_fault(self.rng)
            await asyncio.to_thread(self.system.add_odoo_fault, rule)
            label = f"odoo {rule['kind']}{'/' + str(rule.get('status', '')) if rule['kind'] == 'http_status' else ''}"
            fault = self._record(label, f"{rule['model']}.{rule['method']}")
            fault.healed = fault.began

    async def _link_faults(self, stop: asyncio.Event) -> None:
        proxies = self.system.proxies
        while await self._sleep(self.rng.uniform(2.0, 4.0), stop):
            proxy = self.rng.choice(proxies)
            kind = self.rng.choice(["reset", "blackhole", "latency", "bandwidth"])
            fault = self._record(f"link {kind}")
            if kind == "reset":
                await asyncio.to_thread(proxy.cut)
            elif kind == "blackhole":
                await asyncio.to_thread(proxy.blackhole, True)
                await asyncio.sleep(self.rng.uniform(1.0, 4.0))
                await asyncio.to_thread(proxy.blackhole, False)
            elif kind == "latency":
                await asyncio.to_thread(proxy.set_latency, self.rng.uniform(0.1, 0.5))
                await asyncio.sleep(self.rng.uniform(2.0, 5.0))
                await asyncio.to_thread(proxy.set_latency, 0.0)
            else:
                await asyncio.to_thread(proxy.set_bandwidth, self.rng.choice([8_000, 32_000]))
                await asyncio.sleep(self.rng.uniform(2.0, 5.0))
                await asyncio.to_thread(proxy.set_bandwidth, None)
            fault.healed = time.monotonic()

    async def _broker_and_gateway(self, seconds: float, stop: asyncio.Event) -> None:
        """One graceful broker restart, one gateway killed with clients connected, one hard
        broker kill: spread over the run, each followed by the time to readiness."""
        plan = [
            (0.15, "rabbitmq stop_app/start_app", lambda: broker_stop_start(pause=5.0)),
            (0.40, "gateway SIGKILL", lambda: self.system.kill_gateway(len(self.system.gateways) - 1)),
            (0.55, "gateway restart", lambda: self.system.restart_gateway(len(self.system.gateways) - 1)),
            (0.70, "rabbitmq SIGKILL + restart", broker_hard_kill),
        ]
        started = time.monotonic()
        for share, name, action in plan:
            if not await self._sleep(max(0.0, started + share * seconds - time.monotonic()), stop):
                return
            fault = self._record(name)
            await asyncio.to_thread(action)
            # Healed once every gateway is ready again (broker, relay and store reachable).
            while not await asyncio.to_thread(self.system.ready):
                await asyncio.sleep(0.2)
            fault.healed = time.monotonic()
