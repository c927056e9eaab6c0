"""Plain records the task store reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from odoo_gateway_wire.statuses import TaskStatus
from shared.events import ErrorInfo, TaskEvent

__all__ = ["Begun", "NewTask", "PurgeReport", "Reopened", "TaskRecord", "Turn", "Waiter"]


@dataclass(frozen=True)
class NewTask:
    id: str
    principal: str
    idempotency_key: str
    fingerprint: str
    kind: str
    payload: dict[str, Any]
    #: The Odoo records the payload touches (see ``TaskKind.resource_keys``); tasks sharing
    #: one take effect one at a time, in acceptance order.
    resource_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaskRecord:
    id: str
    principal: str
    idempotency_key: str | None  # None once the idempotency window has passed
    fingerprint: str
    kind: str
    payload: dict[str, Any] | None  # None once history retention has passed
    status: TaskStatus
    seq: int
    attempts: int
    result: dict[str, Any] | None
    error: ErrorInfo | None
    created_at: float
    updated_at: float
    published_at: float | None
    history_pruned: bool
    #: Position in the acceptance order shared by every gateway instance (0: accepted
    #: before orders existed). A replay that publishes a never-acknowledged task anew
    #: moves it to the end.
    accept_order: int = 0
    resource_keys: tuple[str, ...] = ()
    #: Attempts made before the last reopen (an operator's retry of a failed task): the
    #: attempt budget (TASK_MAX_ATTEMPTS) counts from here.
    attempt_base: int = 0

    @property
    def published(self) -> bool:
        return self.published_at is not None


@dataclass(frozen=True)
class Reopened:
    """A failed task put back in line by an operator. ``event`` is the ``retrying`` event
    that tells its watchers (None: a reopen whose publish failed, claimed again);
    ``attempt`` is the attempt its message must carry."""

    task: TaskRecord
    event: TaskEvent | None
    attempt: int


@dataclass(frozen=True)
class PurgeReport:
    keys_released: int
    histories_pruned: int


@dataclass(frozen=True)
class Turn:
    """Whether a task may start its Odoo writes now. ``blocked_by`` is the oldest older
    non-final task sharing a resource key with it (None: its turn has come)."""

    blocked_by: str | None
    blocked_keys: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        return self.blocked_by is None


@dataclass(frozen=True)
class Begun:
    """How :meth:`TaskStore.begin_attempt` went. ``lease_wait``: seconds until another
    holder's lease ends (nothing else was done); else the lease is held and ``turn`` says
    whether the task may start (then its ``running`` event is stored) or was parked."""

    lease_wait: float | None
    turn: Turn = Turn(None)


@dataclass(frozen=True)
class Waiter:
    """A parked task whose blockers have all ended: its message is to be sent again."""

    task_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int
