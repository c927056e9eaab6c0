"""Run a chaos profile end to end and report, in Jepsen's categories, what was lost or
duplicated, with throughput and time to recovery after each kind of fault."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import statistics
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from tests.chaos.checker import COUNTERS, Observations, check
from tests.chaos.fleet import FieldDevice, Replayer, Workload
from tests.chaos.nemesis import Fault, Nemesis
from tests.chaos.profiles import Profile
from tests.chaos.system import ChaosSystem

__all__ = ["format_report", "run_profile"]


def _recoveries(faults: list[Fault], finals: list[float]) -> dict[str, dict[str, Any]]:
    """Per kind of fault: how long it lasted (until every gateway was ready again, or the
    link healed) and how long from the fault until a task ended again after it healed."""
    ordered = sorted(finals)
    outages: dict[str, list[float]] = defaultdict(list)
    recoveries: dict[str, list[float]] = defaultdict(list)
    for fault in faults:
        healed = max(fault.healed, fault.began)
        outages[fault.name].append(healed - fault.began)
        after = next((t for t in ordered if t >= healed), None)
        if after is not None:
            recoveries[fault.name].append(after - fault.began)
    return {
        name: {
            "count": len(outages[name]),
            "outage_p50_s": round(statistics.median(outages[name]), 2),
            "recovery_p50_s": round(statistics.median(values), 2),
            "recovery_max_s": round(max(values), 2),
        }
        for name, values in sorted(recoveries.items())
    }


async def run_profile(profile: Profile, work_dir: Path, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    system = ChaosSystem(work_dir / "logs", worker_threads=profile.worker_threads, odoo_apis=profile.odoo_apis)
    obs = Observations()
    finals: list[float] = []
    devices: list[FieldDevice] = []
    await asyncio.to_thread(system.start)
    try:
        # Odoo's stock before the run: the replay of the counts' moves starts from it.
        moves_before, obs.initial_stock = await asyncio.to_thread(system.odoo_inventory)
        known_moves = {move.id for move in moves_before}
        workload = Workload(inventory_share=profile.inventory_share, hot_products=profile.hot_products)
        outboxes = work_dir / "outboxes"
        # Fresh devices: an outbox left by an earlier run would follow that run's tasks.
        shutil.rmtree(outboxes, ignore_errors=True)
        outboxes.mkdir(parents=True)
        for index in range(profile.clients):
            proxy = system.proxies[index % len(system.proxies)]
            http_only = index < round(profile.clients * profile.http_share)
            devices.append(
                FieldDevice(
                    index,
                    proxy.http_url,
                    outboxes / f"device{index}.sqlite3",
                    http_only=http_only,
                    obs=obs,
                    finals=finals,
                    workload=workload,
                )
            )
        nemesis = Nemesis(system, rng, profile.worker_kill_every)
        replayer = Replayer(devices, [p.http_url for p in system.proxies], obs)
        stop = asyncio.Event()
        started = time.monotonic()
        shares = [
            profile.tasks // profile.clients + (1 if i < profile.tasks % profile.clients else 0)
            for i in range(profile.clients)
        ]
        submitting = [
            asyncio.create_task(
                device.submit_all(
                    share,
                    profile.submit_seconds,
                    random.Random(rng.random()),
                    [rng.uniform(0.1, 0.9) * profile.submit_seconds for _ in range(profile.client_restarts)],
                )
            )
            for device, share in zip(devices, shares, strict=True)
        ]
        nemesis_task = asyncio.create_task(nemesis.run(profile.submit_seconds, stop))
        replay_task = asyncio.create_task(replayer.run(stop, random.Random(seed + 1)))
        await asyncio.gather(*submitting)
        await nemesis_task
        await replay_task
        healed = time.monotonic()
        deadline = healed + profile.drain_seconds
        await asyncio.gather(*(device.drain(deadline) for device in devices))
        drained = time.monotonic()
        # What the store and Odoo hold, once nothing moves any more.
        await asyncio.sleep(2.0)
        obs.store = await asyncio.to_thread(system.store)
        obs.odoo_orders = await asyncio.to_thread(system.odoo_orders)
        moves, obs.final_stock = await asyncio.to_thread(system.odoo_inventory)
        obs.inventory_moves = [move for move in moves if move.id not in known_moves]
        verdict = check(obs)
        ended = max(finals) if finals else drained
        return {
            "profile": profile.name,
            "seed": seed,
            "tasks": profile.tasks,
            "clients": profile.clients,
            "http_clients": sum(d.http_only for d in devices),
            "client_restarts": sum(d.restarts for d in devices),
            "replayed_submissions": replayer.replayed,
            "worker_starts": system.workers.starts if system.workers else 0,
            "worker_starts_by_odoo_api": dict(system.workers.starts_by_api) if system.workers else {},
            "faults": {
                name: sum(1 for f in nemesis.log if f.name == name) for name in sorted({f.name for f in nemesis.log})
            },
            "recovery": _recoveries([f for f in nemesis.log if not f.name.startswith("odoo ")], finals),
            "seconds_total": round(ended - started, 1),
            "seconds_to_drain_after_heal": round(drained - healed, 1),
            "throughput_tasks_per_s": round(len(obs.seen_final) / (ended - started), 1) if finals else 0.0,
            "acknowledged": verdict.acknowledged,
            "succeeded": verdict.succeeded,
            "failed": verdict.failed,
            "failed_reasons": verdict.failed_reasons,
            "inventory": verdict.inventory,
            "counters": verdict.counts,
            "examples": verdict.examples,
            "ok": verdict.ok,
        }
    finally:
        for device in devices:
            await device.close()
        await asyncio.to_thread(system.stop)


def format_report(figures: dict[str, Any]) -> str:
    lines = [
        f"chaos profile {figures['profile']} (seed {figures['seed']}): {figures['tasks']} tasks from "
        f"{figures['clients']} clients ({figures['http_clients']} HTTP-only), {figures['client_restarts']} client "
        f"restarts, {figures['replayed_submissions']} replayed submissions",
        f"acknowledged {figures['acknowledged']}, succeeded {figures['succeeded']}, failed {figures['failed']}; "
        f"{figures['throughput_tasks_per_s']} tasks/s over {figures['seconds_total']} s "
        f"(drain after heal {figures['seconds_to_drain_after_heal']} s)",
        *(f"failed: {reason}" for reason in figures.get("failed_reasons", [])),
        f"inventory counts {figures['inventory']['tasks']}: {figures['inventory']['moves']} moves in Odoo, "
        f"{figures['inventory']['noop_lines']} lines equal to the stock (a move of quantity 0, no stock change)",
        "",
        f"{'check':<32}{'count':>7}",
    ]
    lines += [f"{name:<32}{figures['counters'][name]:>7}" for name in COUNTERS]
    lines += ["", f"{'fault':<32}{'times':>7}{'lasted p50 s':>14}{'recovered p50 s':>17}{'max s':>8}"]
    for name, times in figures["faults"].items():
        rec = figures["recovery"].get(name)
        lasted = f"{rec['outage_p50_s']:.2f}" if rec else "-"
        p50 = f"{rec['recovery_p50_s']:.2f}" if rec else "-"
        worst = f"{rec['recovery_max_s']:.2f}" if rec else "-"
        lines.append(f"{name:<32}{times:>7}{lasted:>14}{p50:>17}{worst:>8}")
    lines.append("")
    lines.append(
        "PASS: nothing lost, nothing duplicated" if figures["ok"] else f"FAIL: {json.dumps(figures['examples'])}"
    )
    return "\n".join(lines)
