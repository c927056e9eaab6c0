"""The task store interface: the memory behind idempotency, resume, polling and leases.

Both implementations (SQLite, PostgreSQL) share :class:`~shared.store.sql.SqlTaskStore`
and pass the same contract tests (``tests/integration/test_store_contract.py``). Methods are
synchronous (workers are threads); the gateway calls them through
:class:`~shared.store.aio.AsyncTaskStore`. Every driver error becomes
:class:`~shared.errors.StoreUnavailable`.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence

from shared.events import TaskEvent
from shared.store.records import Begun, NewTask, PurgeReport, Reopened, TaskRecord, Turn, Waiter

__all__ = ["TaskStore"]


class TaskStore(abc.ABC):
    @abc.abstractmethod
    def migrate(self) -> None:
        """Create tables and indexes if missing (idempotent)."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    @abc.abstractmethod
    def create_or_get(self, new: NewTask, now: float, claim_ttl: float) -> tuple[TaskRecord, bool]:
        """Insert the task unless (principal, key) exists; return the stored task and
        whether this call created it. Creating also stores the ``accepted`` event (seq 0)
        and claims the publish for ``claim_ttl`` seconds (see :meth:`claim_publish`), in the
        same transaction: the usual submission costs two transactions, not three."""

    @abc.abstractmethod
    def accept_batch(
        self, news: Sequence[NewTask], published: Sequence[str], now: float, claim_ttl: float
    ) -> list[tuple[TaskRecord, bool]]:
        """Group commit: :meth:`create_or_get` for each of ``news`` (results in order) and
        :meth:`mark_published` for each of ``published``, in one transaction and one fsync.
        Tasks of one batch sharing a resource key get accept orders in list order."""

    @abc.abstractmethod
    def claim_publish(self, task_id: str, now: float, ttl: float) -> bool:
        """Claim the right to publish an unpublished task for ``ttl`` seconds, so two
        concurrent duplicates never both publish. False if published or claimed."""

    @abc.abstractmethod
    def mark_published(self, task_id: str, now: float) -> None: ...

    @abc.abstractmethod
    def release_publish_claim(self, task_id: str) -> None: ...

    @abc.abstractmethod
    def get(self, task_id: str) -> TaskRecord | None: ...

    @abc.abstractmethod
    def events_after(self, task_id: str, after_seq: int, limit: int = 1000) -> list[TaskEvent]: ...

    def task_and_events(
        self, task_id: str, principal: str, after_seq: int, limit: int
    ) -> tuple[TaskRecord | None, list[TaskEvent]]:
        """What a resume reads for one task: :meth:`get`, then, for a task of ``principal``
        and ``limit`` > 0, :meth:`events_after` (at most ``limit``), on one trip to the store.
        A task of another principal comes back without events."""
        task = self.get(task_id)
        if task is None or task.principal != principal or limit <= 0:
            return task, []
        return task, self.events_after(task_id, after_seq, limit)

    def task_and_events_many(
        self, asks: Sequence[tuple[str, str, int, int]]
    ) -> list[tuple[TaskRecord | None, list[TaskEvent]]]:
        """:meth:`task_and_events` for each ``(task_id, principal, after_seq, limit)``
        (a store may read them all at once)."""
        return [self.task_and_events(*ask) for ask in asks]

    @abc.abstractmethod
    def apply_event(self, event: TaskEvent) -> bool:
        """Store the event and move the task to its state, atomically, if it is newer
        (higher seq) than the task's state and the task is not final: True. An older event
        arriving late only joins the history (False); a duplicate, or anything after the
        final event, is dropped (False)."""

    @abc.abstractmethod
    def acquire_lease(self, task_id: str, owner: str, now: float, ttl: float) -> float | None:
        """Claim (or renew) the single right to work on a task until ``now + ttl``.
        None if acquired, else the seconds until the current holder's lease ends."""

    @abc.abstractmethod
    def release_lease(self, task_id: str, owner: str) -> None: ...

    @abc.abstractmethod
    def begin_attempt(
        self, task_id: str, owner: str, attempt: int, now: float, ttl: float, running: TaskEvent
    ) -> Begun:
        """The start of a worker's attempt, in one transaction: :meth:`acquire_lease`; if
        acquired, :meth:`take_turn`; if the turn has come, :meth:`apply_event` of
        ``running`` (stored before it is published, as a final event is)."""

    @abc.abstractmethod
    def finish_attempt(self, event: TaskEvent, owner: str | None) -> bool:
        """The end of a worker's attempt, in one transaction: :meth:`apply_event` of its
        final event, and :meth:`release_lease` if ``owner`` is given. What apply_event
        returns."""

    @abc.abstractmethod
    def take_turn(self, task_id: str, attempt: int, now: float) -> Turn:
        """May the task start its Odoo writes? Not while an older (acceptance order) task
        sharing one of its resource keys is not final: then the task is parked (it waits
        without holding a worker) and the answer names the oldest blocker. Also records
        that the task was published (a worker holds its message)."""

    @abc.abstractmethod
    def wake_waiters(
        self, now: float, *, keys: Sequence[str] | None = None, rewake_after: float = 30.0, limit: int = 500
    ) -> list[Waiter]:
        """Parked tasks whose turn has come (limited to those sharing ``keys`` if given),
        each claimed for waking by this caller only; one claimed more than ``rewake_after``
        seconds ago and still parked (its waker died) is claimed again."""

    @abc.abstractmethod
    def list_failed(self, principal: str | None, limit: int = 100, before: float | None = None) -> list[TaskRecord]:
        """Failed tasks, newest first (``updated_at`` < ``before`` if given, for paging), of
        one principal or of all."""

    @abc.abstractmethod
    def reopen(self, task_id: str, now: float, claim_ttl: float) -> Reopened | None:
        """Put a ``failed`` task back in line, atomically: a ``retrying`` event (reason
        ``reopened``) whose seq is above every seq the task had, a fresh attempt budget, a
        new place at the end of the acceptance order on its Odoo records, and the publish
        claimed for ``claim_ttl`` seconds (then :meth:`mark_published`). A reopened task
        whose publish failed (still unpublished, claim lapsed) is claimed again, with no
        new event. None if the task is neither, or its payload is gone (retention)."""

    @abc.abstractmethod
    def purge(self, now: float, key_window: float, history_window: float) -> PurgeReport:
        """Forget idempotency keys older than ``key_window`` seconds, and the events and
        payloads of final tasks untouched for ``history_window`` seconds (the task row,
        with its final state, stays, so a resume can say the history is gone)."""

    @abc.abstractmethod
    def close(self) -> None: ...
