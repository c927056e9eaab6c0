"""What an application holds for one submission: :class:`TaskHandle`, and the values it yields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from client.errors import SubmissionRejected, TaskNotFound
from client.outbox import FINAL_STATUSES, SETTLED_STATUSES, OutboxEntry

if TYPE_CHECKING:
    from client.ledger import Ledger

__all__ = ["FinalState", "TaskEvent", "TaskHandle"]


@dataclass(frozen=True)
class TaskEvent:
    """One step of a task, as the gateway reported it (``seq`` orders a task's events)."""

    task_id: str
    seq: int
    status: str
    attempt: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    at: float | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], task_id: str | None = None) -> TaskEvent:
        """From a WebSocket ``event`` frame, or an item of ``GET /v1/tasks/{id}/events``
        (which has no ``task_id`` of its own, hence the argument)."""
        return cls(
            task_id=str(task_id if task_id is not None else data["task_id"]),
            seq=int(data["seq"]),
            status=str(data["status"]),
            attempt=int(data.get("attempt") or 0),
            result=data.get("result"),
            error=data.get("error"),
            at=data.get("at"),
        )


@dataclass(frozen=True)
class FinalState:
    task_id: str
    status: str  # "succeeded" | "failed"
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    seq: int

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


class TaskHandle:
    """A submission (or a task watched by id). Created by the client, never directly.

    ``key`` is the idempotency key (None for a task reattached by id); ``task_id`` is None until
    the gateway acknowledged the submission. The row behind the handle leaves the outbox when
    the application has been shown how it ended: :meth:`result` returned or raised, or
    :meth:`events` yielded the final event.
    """

    def __init__(self, ledger: Ledger, entry: OutboxEntry) -> None:
        self._ledger = ledger
        self.entry_id = entry.id
        self.key = entry.key
        self.kind = entry.kind
        self.payload = entry.payload
        self.created_at = entry.created_at
        self._task_id = entry.task_id
        self._status = entry.status
        self._last_seq = entry.last_seq
        self._result = entry.result
        self._error = entry.error
        self._events: list[TaskEvent] = []
        if entry.status in FINAL_STATUSES and entry.task_id is not None:
            # Final before a restart but never shown: events() must still yield the ending.
            self._events.append(TaskEvent(entry.task_id, entry.last_seq, entry.status, 0, entry.result, entry.error))
        self._changed = asyncio.Event()
        # Bookkeeping in memory only: how often this process wrote it to a socket or POSTed it
        # (minus sends a gateway provably ignored, as on a connection refused for its token);
        # row created by this process; not to be resent before this loop time ("retry later").
        self.sends = 0
        self.posting = 0  # HTTP attempts under way (their outcome decides whether it was sent)
        self.held = False  # being withdrawn: no transport may send it meanwhile
        self.created_here = False
        self.not_before = 0.0
        self.surfaced = False

    def __repr__(self) -> str:
        return f"<TaskHandle key={self.key} task_id={self._task_id} status={self._status} seq={self._last_seq}>"

    @property
    def task_id(self) -> str | None:
        return self._task_id

    @property
    def status(self) -> str:
        """``pending`` until acknowledged, then the task's last known status."""
        return self._status

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def settled(self) -> bool:
        return self._status in SETTLED_STATUSES

    @property
    def final_state(self) -> FinalState | None:
        if self._status not in FINAL_STATUSES or self._task_id is None:
            return None
        return FinalState(self._task_id, self._status, self._result, self._error, self._last_seq)

    # -- for the ledger --------------------------------------------------------------------

    def _notify(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    def _set_accepted(self, task_id: str) -> None:
        self._task_id = task_id
        if self._status == "pending":
            self._status = "accepted"
        self._notify()

    def _apply(self, event: TaskEvent) -> None:
        self._last_seq = event.seq
        self._status = event.status
        self._result = event.result
        self._error = event.error
        self._events.append(event)
        self._notify()

    def _settle(self, status: str, error: dict[str, Any]) -> None:
        self._status = status
        self._error = error
        self._notify()

    # -- for the application ---------------------------------------------------------------

    async def _wait(self, ready: Callable[[], bool]) -> None:
        while True:
            changed = self._changed  # taken before the check, so no notification slips between
            if ready():
                return
            self._ledger.waiting()
            await changed.wait()

    def _failure(self) -> Exception:
        error = self._error or {}
        if self._status == "unknown":
            return TaskNotFound(self._task_id or "?")
        return SubmissionRejected(
            str(error.get("code", "rejected")),
            str(error.get("message", "")),
            error.get("details"),
            key=self.key,
        )

    async def accepted(self) -> str:
        """The task id, once the gateway has acknowledged the submission (durably recorded and
        queued). Raises :class:`SubmissionRejected` if the gateway refused it."""
        await self._wait(lambda: self._task_id is not None or self._status == "rejected")
        if self._task_id is None:
            await self._ledger.surface(self)
            raise self._failure()
        return self._task_id

    async def result(self) -> FinalState:
        """Wait for the final state (``succeeded`` or ``failed``). Raises
        :class:`SubmissionRejected` or :class:`TaskNotFound` if there will be none."""
        await self._wait(lambda: self.settled)
        await self._ledger.surface(self)
        state = self.final_state
        if state is None:
            raise self._failure()
        return state

    def _can_advance(self, index: int) -> bool:
        return index < len(self._events) or self._status in ("rejected", "unknown")

    async def events(self) -> AsyncIterator[TaskEvent]:
        """Each event once, in seq order, ending with the final one. Only events not yet seen by
        this outbox are yielded: after a restart, what was recorded before is not repeated."""
        index = 0
        while True:
            await self._wait(partial(self._can_advance, index))
            if index >= len(self._events):
                await self._ledger.surface(self)
                raise self._failure()
            event = self._events[index]
            index += 1
            if event.final:
                # Removed before yielding: a consumer typically stops iterating at the final event.
                await self._ledger.surface(self)
                yield event
                return
            yield event
