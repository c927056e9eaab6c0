"""What an application holds for one submission: :class:`TaskHandle`, and the values it yields."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

from odoo_gateway_client.errors import SubmissionRejected, TaskNotFound
from odoo_gateway_client.outbox import OutboxEntry
from odoo_gateway_client.status import FINAL_STATUSES, SETTLED_STATUSES, HandleStatus, LocalStatus, TaskStatus

__all__ = ["Acknowledged", "Change", "FinalState", "HandleOwner", "Settled", "TaskEvent", "TaskHandle"]


@dataclass(frozen=True)
class TaskEvent:
    """One step of a task, as the gateway reported it (``seq`` orders a task's events)."""

    task_id: str
    seq: int
    status: TaskStatus
    attempt: int = 0
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    at: float | None = None

    def __post_init__(self) -> None:
        # A status given as its string (``"running"``) is the same status; an unknown one is refused.
        object.__setattr__(self, "status", TaskStatus(self.status))

    @property
    def final(self) -> bool:
        return self.status in FINAL_STATUSES

    @classmethod
    def from_wire(cls, data: Mapping[str, Any], task_id: str | None = None) -> TaskEvent:
        """From a WebSocket ``event`` frame, or an item of ``GET /v1/tasks/{id}/events``
        (which has no ``task_id`` of its own, hence the argument). ValueError for a status
        this client does not know: a newer gateway's intermediate step, skipped (the final
        statuses are the protocol's, so the ending is never one of those)."""
        return cls(
            task_id=str(task_id if task_id is not None else data["task_id"]),
            seq=int(data["seq"]),
            status=TaskStatus(data["status"]),
            attempt=int(data.get("attempt") or 0),
            result=data.get("result"),
            error=data.get("error"),
            at=data.get("at"),
        )


@dataclass(frozen=True)
class FinalState:
    task_id: str
    status: TaskStatus  # SUCCEEDED or FAILED
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    seq: int

    @property
    def succeeded(self) -> bool:
        return self.status is TaskStatus.SUCCEEDED


@dataclass(frozen=True)
class Acknowledged:
    """The gateway accepted the submission as ``task_id``."""

    task_id: str


@dataclass(frozen=True)
class Settled:
    """Nothing more will come: the gateway refused the submission or does not know the task."""

    status: LocalStatus  # REJECTED or UNKNOWN
    error: dict[str, Any]


#: What moves a handle on: :meth:`TaskHandle.advance` takes one of these.
Change = Acknowledged | TaskEvent | Settled


class HandleOwner(Protocol):
    """What a handle needs from the client that made it (the ledger)."""

    def waiting(self) -> None:
        """The application awaits a handle: raise if the client stopped, start it if idle."""

    async def surface(self, handle: TaskHandle) -> None:
        """The application has seen how ``handle`` ended: its row can leave the outbox."""


class TaskHandle:
    """A submission (or a task watched by id). Created by the client, never directly.

    ``key`` is the idempotency key (None for a task reattached by id); ``task_id`` is None until
    the gateway acknowledged the submission. The row behind the handle leaves the outbox when
    the application has been shown how it ended: :meth:`result` returned or raised, or
    :meth:`events` yielded the final event.
    """

    def __init__(self, owner: HandleOwner, entry: OutboxEntry) -> None:
        self._owner = owner
        self.entry_id = entry.id
        self.key = entry.key
        self.kind = entry.kind
        self.payload = entry.payload
        self.created_at = entry.created_at
        self._task_id = entry.task_id
        self._status: HandleStatus = entry.status
        self._last_seq = entry.last_seq
        self._result = entry.result
        self._error = entry.error
        self._events: list[TaskEvent] = []
        if isinstance(entry.status, TaskStatus) and entry.status.final and entry.task_id is not None:
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
    def status(self) -> HandleStatus:
        """``PENDING`` until acknowledged, then the task's last known status."""
        return self._status

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def settled(self) -> bool:
        return self._status in SETTLED_STATUSES

    @property
    def final_state(self) -> FinalState | None:
        if not isinstance(self._status, TaskStatus) or not self._status.final or self._task_id is None:
            return None
        return FinalState(self._task_id, self._status, self._result, self._error, self._last_seq)

    # -- for the client that owns it -------------------------------------------------------

    def advance(self, change: Change) -> None:
        """The one way a handle moves on, once the change is in the outbox; wakes its waiters."""
        match change:
            case Acknowledged(task_id):
                self._task_id = task_id
                if self._status is LocalStatus.PENDING:
                    self._status = TaskStatus.ACCEPTED
            case TaskEvent():
                self._last_seq = change.seq
                self._status = change.status
                self._result = change.result
                self._error = change.error
                self._events.append(change)
            case Settled(status, error):
                self._status = status
                self._error = error
        self.wake()

    def wake(self) -> None:
        """Let every waiter look again (the client stopped, or the handle moved on)."""
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    # -- for the application ---------------------------------------------------------------

    async def _wait(self, ready: Callable[[], bool]) -> None:
        while True:
            changed = self._changed  # taken before the check, so no notification slips between
            if ready():
                return
            self._owner.waiting()
            await changed.wait()

    def _failure(self) -> Exception:
        error = self._error or {}
        if self._status is LocalStatus.UNKNOWN:
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
        await self._wait(lambda: self._task_id is not None or self._status is LocalStatus.REJECTED)
        if self._task_id is None:
            await self._owner.surface(self)
            raise self._failure()
        return self._task_id

    async def result(self) -> FinalState:
        """Wait for the final state (``succeeded`` or ``failed``). Raises
        :class:`SubmissionRejected` or :class:`TaskNotFound` if there will be none."""
        await self._wait(lambda: self.settled)
        await self._owner.surface(self)
        state = self.final_state
        if state is None:
            raise self._failure()
        return state

    def _can_advance(self, index: int) -> bool:
        return index < len(self._events) or self._status in (LocalStatus.REJECTED, LocalStatus.UNKNOWN)

    async def events(self) -> AsyncIterator[TaskEvent]:
        """Each event once, in seq order, ending with the final one. Only events not yet seen by
        this outbox are yielded: after a restart, what was recorded before is not repeated."""
        index = 0
        while True:
            await self._wait(partial(self._can_advance, index))
            if index >= len(self._events):
                await self._owner.surface(self)
                raise self._failure()
            event = self._events[index]
            index += 1
            if event.final:
                # Removed before yielding: a consumer typically stops iterating at the final event.
                await self._owner.surface(self)
                yield event
                return
            yield event
