"""One WebSocket connection's life: send what the ledger needs sent, apply what comes back.

On open, and whenever the ledger has new work (a "kick"), the session sends every
unacknowledged submission not already in flight on this connection (each with its own
idempotency key), then one ``resume`` with every unsettled task not yet watched on this
connection and the last seq seen. A connection therefore starts from the outbox alone: what
an earlier connection (or process) had in flight is simply sent again, and the gateway's
idempotency makes that safe.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

from websockets.asyncio.client import ClientConnection

from odoo_gateway_client.handle import TaskEvent, TaskHandle
from odoo_gateway_client.ledger import Ledger
from odoo_gateway_wire.compact import COMPACT_SUBPROTOCOL, server_frame_from_compact
from odoo_gateway_wire.error_codes import is_retryable
from odoo_gateway_wire.frames import encode_client_frame, resume_frame, submit_frame
from odoo_gateway_wire.limits import MAX_RESUME_TASKS  # the gateway's limit per resume frame
from odoo_gateway_wire.statuses import FINAL_STATUSES, attempt_of_seq

__all__ = ["WsSession", "retry_delay"]

log = logging.getLogger(__name__)
FetchFinal = Callable[[str], Awaitable[TaskEvent | None]]


def retry_delay(retry_after: Any, default: float = 2.0) -> float:
    """When to resend after "try again later": the gateway's hint, spread over [1x, 2x) so that
    every client told "2 s" during one broker outage does not come back in the same instant."""
    try:
        base = float(retry_after) if retry_after is not None else default
    except (TypeError, ValueError):
        base = default
    return max(0.05, base) * (1.0 + random.random())


class WsSession:
    def __init__(
        self,
        ws: ClientConnection,
        ledger: Ledger,
        kick: asyncio.Event,
        fetch_final: FetchFinal,
        max_in_flight: int = 100,
    ) -> None:
        self._ws = ws
        self._ledger = ledger
        self._kick = kick
        self._fetch_final = fetch_final
        self._max_in_flight = max_in_flight
        self._refs = itertools.count(1)
        self._in_flight: dict[str, TaskHandle] = {}  # submit ref -> handle
        self._resumes: dict[str, list[str]] = {}  # resume ref -> task ids
        self._watching: set[str] = set()  # tasks the gateway streams to this connection
        # The wire form the gateway chose at the handshake; frames are built and read in
        # their v1 shape and translated at the edge.
        self.compact = ws.subprotocol == COMPACT_SUBPROTOCOL
        self.sent: list[TaskHandle] = []  # submissions written to this connection
        self.frames_received = 0

    async def run(self) -> None:
        """Run until the connection ends; raises ``websockets.ConnectionClosed``."""
        reader = asyncio.create_task(self._read_loop(), name="gateway-client-reader")
        kicked: asyncio.Task[bool] | None = None
        try:
            while not reader.done():
                self._kick.clear()  # before flushing: a kick during the flush is not lost
                await self._flush()
                kicked = asyncio.create_task(self._kick.wait())
                await asyncio.wait({reader, kicked}, return_when=asyncio.FIRST_COMPLETED)
                kicked.cancel()
            reader.result()
        finally:
            if kicked is not None:
                kicked.cancel()
            if not reader.done():
                reader.cancel()
                await asyncio.wait({reader})
            if not reader.cancelled():
                # Retrieved even when a failed send ended the session first: both carry the same
                # close, and an unretrieved one would be logged at garbage collection.
                reader.exception()

    async def _send(self, frame: dict[str, Any]) -> None:
        await self._ws.send(encode_client_frame(frame, self.compact))

    def _defer(self, handle: TaskHandle, retry_after: Any) -> None:
        delay = retry_delay(retry_after)
        handle.not_before = asyncio.get_running_loop().time() + delay
        asyncio.get_running_loop().call_later(delay, self._kick.set)

    async def _flush(self) -> None:
        now = asyncio.get_running_loop().time()
        busy = {h.entry_id for h in self._in_flight.values()}
        for handle in self._ledger.unsent():
            if len(self._in_flight) >= self._max_in_flight:
                break  # the rest go as acknowledgements free the window (each one kicks)
            if handle.entry_id in busy or handle.not_before > now or handle.surfaced or handle.held:
                continue
            if handle.key is None or handle.kind is None:
                continue  # a task watched by id is never pending: nothing to submit
            ref = f"s{next(self._refs)}"
            self._in_flight[ref] = handle
            handle.sends += 1  # counted before the await: withdraw() must see it at once
            self.sent.append(handle)
            await self._send(submit_frame(handle.key, handle.kind, handle.payload, ref))
        missing = [(t, s) for t, s in self._ledger.watched().items() if t not in self._watching]
        for start in range(0, len(missing), MAX_RESUME_TASKS):
            chunk = dict(missing[start : start + MAX_RESUME_TASKS])
            ref = f"r{next(self._refs)}"
            self._resumes[ref] = list(chunk)
            self._watching.update(chunk)
            await self._send(resume_frame(chunk, ref))

    async def _read_loop(self) -> None:
        while True:
            text = await self._ws.recv()
            try:
                frame = json.loads(text)
            except (TypeError, ValueError):
                log.warning("ignoring a frame that is not JSON: %.80r", text)
                continue
            self.frames_received += 1
            if not isinstance(frame, dict):
                continue
            try:
                if self.compact:
                    frame = server_frame_from_compact(frame)
                await self._on_frame(frame)
            except (KeyError, TypeError, ValueError) as exc:
                # A frame missing a field must not take the connection (and every task on it) down.
                log.warning("ignoring a malformed %r frame: %s", frame.get("type"), exc)

    async def _on_frame(self, frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "event":
            await self._ledger.event(TaskEvent.from_wire(frame))
        elif kind == "accepted":
            handle = self._in_flight.pop(str(frame.get("ref")), None)
            if handle is not None:
                task_id = str(frame["task_id"])
                # The gateway watches a task from the moment it accepts it, on this connection.
                self._watching.add(task_id)
                await self._ledger.accepted(handle, task_id)
                self._kick.set()  # a slot in the in-flight window is free
            if frame.get("status") in FINAL_STATUSES and ("result" in frame or "error" in frame):
                # Compact form: a task already final has its outcome folded into `accepted`.
                await self._ledger.event(TaskEvent.from_wire({**frame, "attempt": attempt_of_seq(frame["seq"])}))
        elif kind == "resumed":
            await self._on_resumed(frame)
        elif kind == "error":
            await self._on_error(frame)
        # "pong" and "authenticated" need nothing.

    async def _on_error(self, frame: dict[str, Any]) -> None:
        ref = str(frame.get("ref"))
        code = str(frame.get("code") or "error")
        message = str(frame.get("message") or "")
        retryable = is_retryable(code, frame.get("retry_after"))
        handle = self._in_flight.pop(ref, None)
        if handle is not None:
            if retryable:
                log.info("submission %s: %s; resending later with the same key", handle.key, code)
                self._defer(handle, frame.get("retry_after"))
            else:
                await self._ledger.reject(handle, code, message, frame.get("details"))
            self._kick.set()
            return
        tasks = self._resumes.pop(ref, None)
        if tasks is not None:
            self._watching.difference_update(tasks)
            if retryable:
                asyncio.get_running_loop().call_later(retry_delay(frame.get("retry_after")), self._kick.set)
            else:
                # A resume refused as malformed would be refused again at every flush: the ids
                # cannot be tasks of the gateway, so they end as unknown rather than loop.
                log.warning("gateway refused to resume %d task(s): %s: %s", len(tasks), code, message)
                for task_id in tasks:
                    await self._ledger.unknown(task_id)
            return
        log.warning("gateway error: %s: %s", code, message)

    async def _on_resumed(self, frame: dict[str, Any]) -> None:
        tasks = frame.get("tasks") or {}
        for task_id, info in tasks.items():
            if not isinstance(info, dict) or info.get("recovered", True):
                continue
            # Retention removed the events after our seq: nothing will be replayed. If the task
            # ended meanwhile, its final state is still readable over HTTP.
            behind = any(h.last_seq < int(info.get("seq", 0)) for h in self._ledger.for_task(task_id))
            if behind and info.get("status") in FINAL_STATUSES:
                final = await self._fetch_final(task_id)
                if final is not None:
                    await self._ledger.event(final)
        for task_id in frame.get("unknown") or []:
            self._watching.discard(str(task_id))
            await self._ledger.unknown(str(task_id))
