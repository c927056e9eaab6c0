"""Bytes per task on the wire: protocol v1, its compact form, and HTTP with polling.

The README's inventory example (one ``inventory.adjust`` of one line), sent through a
byte-counting TCP proxy (``tests.support.proxy.FaultProxy``), so the figures are TCP
payload: WebSocket frame headers and masks, HTTP request and response heads included.

- WebSocket: on a socket already open and authenticated (the handshake is paid once per
  connection, not per task), ``submit`` up, then ``accepted``, ``running`` and
  ``succeeded`` down; counted from before the submit to after the final event.
- HTTP: ``POST /v1/tasks``, then ``GET /v1/tasks/{id}`` every ``poll`` seconds until the
  task is final, on one kept-alive connection; reported per task and per request.

::

    .venv/bin/python -m tests.bench.bench_wire --tasks 5

Starts its own stack (SQLite store). Figures, not assertions.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets
from websockets.typing import Subprotocol

from odoo_gateway_wire.compact import COMPACT_SUBPROTOCOL, client_frame_to_compact, server_frame_from_compact
from tests.support.processes import ROOT
from tests.support.proxy import FaultProxy
from tests.support.stack import TOKENS, Stack, running_stack

__all__ = ["measure_http", "measure_ws", "readme_count"]

FINAL = ("succeeded", "failed")


def readme_count() -> dict[str, Any]:
    """The README's inventory example, with a count that differs each time (so it moves stock)."""
    quantity = 100 + uuid.uuid4().int % 900
    return {"location": "WH/Stock", "lines": [{"product": "DEMO-001", "quantity": quantity}]}


def _bytes(proxy: FaultProxy) -> tuple[int, int]:
    stats = proxy.stats
    return stats.bytes_to_server, stats.bytes_to_client


async def measure_ws(stack: Stack, compact: bool, tasks: int = 3, deflate: bool = False) -> dict[str, Any]:
    """Bytes up and down per task on an open socket, in v1 or the compact form.
    ``deflate``: offer permessage-deflate as well (the ``websockets`` default; browsers do)."""
    host, port = stack.base.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        async with websockets.connect(
            proxy.ws_url + "/v1/ws",
            additional_headers={"Authorization": f"Bearer {TOKENS['demo']}"},
            subprotocols=[Subprotocol(COMPACT_SUBPROTOCOL)] if compact else None,
            compression="deflate" if deflate else None,
            ping_interval=None,
        ) as ws:
            assert (ws.subprotocol == COMPACT_SUBPROTOCOL) is compact
            await asyncio.sleep(0.2)  # the handshake is counted before the first snapshot
            up0, down0 = _bytes(proxy)
            frames: list[str] = []
            for n in range(1, tasks + 1):
                submit = {
                    "type": "submit",
                    "ref": f"s{n}",
                    "idempotency_key": str(uuid.uuid4()),
                    "kind": "inventory.adjust",
                    "payload": readme_count(),
                }
                await ws.send(json.dumps(client_frame_to_compact(submit) if compact else submit, separators=(",", ":")))
                while True:
                    text = str(await asyncio.wait_for(ws.recv(), 60))
                    frames.append(text)
                    frame = json.loads(text)
                    frame = server_frame_from_compact(frame) if compact else frame
                    if frame["type"] == "error":
                        raise RuntimeError(text)
                    if frame["type"] in ("event", "accepted") and frame.get("status") in FINAL:
                        break
            await asyncio.sleep(0.2)
            up1, down1 = _bytes(proxy)
    return {
        "form": ("compact" if compact else "v1") + (" + deflate" if deflate else ""),
        "tasks": tasks,
        "handshake": up0 + down0,  # once per connection, not per task
        "up_per_task": (up1 - up0) / tasks,
        "down_per_task": (down1 - down0) / tasks,
        "total_per_task": (up1 - up0 + down1 - down0) / tasks,
        "last_task_frames": frames[-3:],
    }


async def measure_http(stack: Stack, tasks: int = 3, poll: float = 1.0) -> dict[str, Any]:
    """Bytes per task for ``POST`` then ``GET`` every ``poll`` s until final (one connection)."""
    host, port = stack.base.removeprefix("http://").split(":")
    with FaultProxy(host, int(port)) as proxy:
        async with httpx.AsyncClient(base_url=proxy.http_url, timeout=30) as http:
            requests = 0
            up0, down0 = _bytes(proxy)
            for _ in range(tasks):
                body = {"kind": "inventory.adjust", "payload": readme_count()}
                response = await http.post("/v1/tasks", headers=stack.headers(key=str(uuid.uuid4())), json=body)
                response.raise_for_status()
                requests += 1
                task_id = response.json()["task_id"]
                while True:
                    await asyncio.sleep(poll)
                    view = await http.get(f"/v1/tasks/{task_id}", headers=stack.headers())
                    requests += 1
                    if view.json()["status"] in FINAL:
                        break
            await asyncio.sleep(0.2)
            up1, down1 = _bytes(proxy)
    return {
        "form": f"HTTP, polling every {poll:g} s",
        "tasks": tasks,
        "requests_per_task": requests / tasks,
        "up_per_task": (up1 - up0) / tasks,
        "down_per_task": (down1 - down0) / tasks,
        "total_per_task": (up1 - up0 + down1 - down0) / tasks,
        "per_request": (up1 - up0 + down1 - down0) / requests,
    }


async def measure_all(stack: Stack, tasks: int, poll: float) -> list[dict[str, Any]]:
    return [
        await measure_ws(stack, compact=False, tasks=tasks),
        await measure_ws(stack, compact=True, tasks=tasks),
        # The gateway does not negotiate permessage-deflate: offered, it changes nothing.
        await measure_ws(stack, compact=True, tasks=tasks, deflate=True),
        await measure_http(stack, tasks=tasks, poll=poll),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=5)
    parser.add_argument("--poll", type=float, default=1.0, help="HTTP polling interval, seconds")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'wire.sqlite3'}"
        with running_stack(url, ROOT / "test-artifacts" / "logs" / "bench_wire") as stack:
            rows = asyncio.run(measure_all(stack, args.tasks, args.poll))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"bytes per task, README inventory example, TCP payload ({args.tasks} tasks each)")
    print(f"{'form':34} {'up':>7} {'down':>7} {'total':>7}")
    for row in rows:
        print(f"{row['form']:34} {row['up_per_task']:7.0f} {row['down_per_task']:7.0f} {row['total_per_task']:7.0f}")
    for row in rows[:-1]:
        print(f"{row['form']}: handshake {row['handshake']} bytes, once per connection")
    http = rows[-1]
    print(f"HTTP: {http['requests_per_task']:.1f} requests per task, {http['per_request']:.0f} bytes per request")
    for row in rows[:2]:
        print(f"{row['form']} frames down (last task):", *row["last_task_frames"], sep="\n  ")
    print(f"({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    main()
