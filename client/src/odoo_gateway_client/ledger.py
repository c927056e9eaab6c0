"""The client's state: the outbox on disk and one :class:`TaskHandle` per row in memory.

Transports (WebSocket, HTTP polling) read what to send from here and report what the gateway
answered; the ledger writes each change to the outbox first (fsync'd), then updates the handle.
So what the application was told is never ahead of what survives a crash.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from odoo_gateway_client.errors import ClientClosed, GatewayClientError, SubmissionRejected
from odoo_gateway_client.handle import Acknowledged, Settled, TaskEvent, TaskHandle
from odoo_gateway_client.outbox import Outbox, OutboxEntry
from odoo_gateway_client.status import LocalStatus
from odoo_gateway_wire.fingerprint import canonical_submission

__all__ = ["Ledger"]

log = logging.getLogger(__name__)
_WITHDRAW_WAIT = 5.0


class Ledger:
    def __init__(self, outbox: Outbox, on_work: Callable[[], None], on_wait: Callable[[], None] | None = None) -> None:
        self.outbox = outbox
        self._on_work = on_work  # new work for the transports
        self._on_wait = on_wait  # someone awaits a handle: the client must be running
        self._handles: dict[int, TaskHandle] = {}
        self._by_key: dict[str, TaskHandle] = {}
        # A list: a task reattached by id and its own submission row may both be live.
        self._by_task: dict[str, list[TaskHandle]] = {}
        self.stopped: GatewayClientError | None = None
        for entry in outbox.entries():
            self._register(entry)

    def _register(self, entry: OutboxEntry) -> TaskHandle:
        handle = self._handles.get(entry.id)
        if handle is None:
            handle = TaskHandle(self, entry)
            self._handles[entry.id] = handle
            if handle.key is not None:
                self._by_key[handle.key] = handle
            if handle.task_id is not None:
                self._by_task.setdefault(handle.task_id, []).append(handle)
        return handle

    def _unregister(self, handle: TaskHandle) -> None:
        self._handles.pop(handle.entry_id, None)
        if handle.key is not None:
            self._by_key.pop(handle.key, None)
        if handle.task_id is not None:
            others = [h for h in self._by_task.get(handle.task_id, []) if h is not handle]
            if others:
                self._by_task[handle.task_id] = others
            else:
                self._by_task.pop(handle.task_id, None)

    # -- queries (memory only) -------------------------------------------------------------

    def handles(self) -> list[TaskHandle]:
        return sorted(self._handles.values(), key=lambda h: h.entry_id)

    def unsent(self) -> list[TaskHandle]:
        """Submissions without an acknowledgement: to be (re)sent with their own key."""
        return [h for h in self.handles() if h.status is LocalStatus.PENDING]

    def watched(self) -> dict[str, int]:
        """Task id -> last seq seen, for every acknowledged task that is not settled."""
        positions: dict[str, int] = {}
        for handle in self.handles():
            if handle.task_id is not None and not handle.settled:
                positions[handle.task_id] = min(positions.get(handle.task_id, handle.last_seq), handle.last_seq)
        return positions

    def for_task(self, task_id: str) -> list[TaskHandle]:
        return list(self._by_task.get(task_id, ()))

    def by_key(self, key: str) -> TaskHandle | None:
        return self._by_key.get(key)

    def raise_if_stopped(self) -> None:
        if self.stopped is not None:
            raise self.stopped

    def waiting(self) -> None:
        self.raise_if_stopped()
        if self._on_wait is not None:
            self._on_wait()

    # -- changes from the application -----------------------------------------------------

    async def add(self, key: str, kind: str, payload: dict[str, Any]) -> TaskHandle:
        wanted = canonical_submission(kind, payload)
        entry, created = await asyncio.to_thread(self.outbox.add, key, kind, payload)
        if not created and canonical_submission(entry.kind, entry.payload) != wanted:
            # Caught here rather than by the gateway: the row already in the outbox would
            # otherwise be silently taken for this different submission.
            raise SubmissionRejected(
                "idempotency_key_reused",
                "This idempotency key is already in the outbox for a different submission.",
                {"key": key},
                key=key,
            )
        handle = self._register(entry)
        handle.created_here = handle.created_here or created
        self._on_work()
        return handle

    def watch(self, task_id: str) -> TaskHandle:
        live = self._by_task.get(task_id)
        if live:
            return live[0]
        handle = self._register(self.outbox.watch(task_id))
        self._on_work()
        return handle

    async def surface(self, handle: TaskHandle) -> None:
        """The application has seen how ``handle`` ended: its row can leave the outbox."""
        if handle.surfaced:
            return
        handle.surfaced = True
        self._unregister(handle)
        if not self.outbox.closed:  # after close() the row stays; the next run shows it again
            await asyncio.to_thread(self.outbox.remove, handle.entry_id)

    async def withdraw(self, handle: TaskHandle) -> bool:
        """Remove a submission that was never written to any connection by this process and has
        no acknowledgement. It is held back from every transport first (``held``), so none can
        pick it up while an HTTP attempt already under way resolves. Rows loaded from an
        earlier run are never withdrawn: that run may have sent them."""
        if handle.status is not LocalStatus.PENDING or not handle.created_here or handle.surfaced or handle.held:
            return False
        # An HTTP attempt under way resolves in a moment, and a refused connection proves it
        # never arrived: hold the submission back from every transport and let it resolve.
        handle.held = True
        deadline = asyncio.get_running_loop().time() + _WITHDRAW_WAIT
        while handle.posting and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
        if handle.status is not LocalStatus.PENDING or handle.sends != 0 or handle.posting:
            handle.held = False
            return False
        handle.surfaced = True
        self._unregister(handle)
        await asyncio.to_thread(self.outbox.remove, handle.entry_id)
        return True

    def stop(self, error: GatewayClientError) -> None:
        """Nothing more will come (bad token, client closed): wake every waiter with ``error``."""
        if self.stopped is None or isinstance(self.stopped, ClientClosed):
            self.stopped = error
        for handle in list(self._handles.values()):
            handle.wake()

    # -- changes reported by a transport ---------------------------------------------------

    async def accepted(self, handle: TaskHandle, task_id: str) -> None:
        if handle.surfaced or handle.task_id == task_id:
            return
        await asyncio.to_thread(self.outbox.mark_accepted, handle.entry_id, task_id)
        handle.advance(Acknowledged(task_id))
        self._by_task.setdefault(task_id, []).append(handle)
        log.debug("submission %s accepted as task %s", handle.key, task_id)

    async def event(self, event: TaskEvent) -> None:
        for handle in self.for_task(event.task_id):
            if event.seq <= handle.last_seq or handle.settled:
                continue  # a duplicate (redelivery, resend after reconnect): seen already
            await asyncio.to_thread(
                self.outbox.record_event, handle.entry_id, event.seq, event.status, event.result, event.error
            )
            # Not recorded means another process on this file got there first; this process's
            # consumers still have not seen it, so it is applied all the same.
            if not handle.surfaced:
                handle.advance(event)

    async def reject(self, handle: TaskHandle, code: str, message: str, details: Any) -> None:
        if handle.surfaced or handle.settled:
            return
        error = {"code": code, "message": message, "details": details}
        await asyncio.to_thread(self.outbox.settle, handle.entry_id, LocalStatus.REJECTED, error)
        handle.advance(Settled(LocalStatus.REJECTED, error))
        log.warning("submission %s rejected: %s: %s", handle.key, code, message)

    async def unknown(self, task_id: str) -> None:
        error = {"code": "not_found", "message": "The gateway does not know this task.", "details": None}
        for handle in self.for_task(task_id):
            if not handle.settled:
                await asyncio.to_thread(self.outbox.settle, handle.entry_id, LocalStatus.UNKNOWN, error)
                handle.advance(Settled(LocalStatus.UNKNOWN, error))
