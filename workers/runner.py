"""Run one attempt of one task: the exactly-once logic, independent of Dramatiq.

For each attempt:

1. Check the message against the task store: a task the store does not know, or a message
   whose kind or payload differs from what was accepted, is an anomaly (logged, counted,
   dead-lettered, never applied). A task the store holds as final is not run again; its
   final event is published again (the first publish may have been lost).
2. Take the task's lease, so no two workers ever apply the same task at once.
3. Take the task's turn: while an older task sharing one of its Odoo records (resource
   keys) is not final, the task is parked in the store and ``waiting`` is published; the
   message is acknowledged, so no worker thread waits. The worker that finishes the
   blocker sends the message again (and a sweeper in every worker process catches a
   waker that died). Waiting is not an attempt.
4. Store ``running`` (steps 2 to 4 are one store transaction), publish it; look in Odoo
   for the task's effect (by its reference); if it is there, the task is done:
   ``succeeded`` with what it produced.
5. Renew the lease if the lookup took longer than the slack the first lease was taken
   with, apply the task (which proves its own effect before returning). On an ambiguous
   failure look for the effect again.
6. Final outcomes are stored first, with the lease released in the same transaction
   (that frees the task's records and wakes the next task in line), then published.
   Permanent failure or retries exhausted: ``failed`` and :class:`TaskAbandoned` (the
   message goes to the dead-letter queue). Otherwise
   ``retrying`` and :class:`RetryLater`: the task keeps its records, so no newer task on
   them overtakes it while it waits for its retry.

The lease is released at the end of an attempt unless a write may still be running in
Odoo (ambiguous failure, or the process died): then it lapses on its own
``lease_seconds`` (at most :data:`LOOKUP_SLACK_SECONDS` more) after the write began, and
the next attempt cannot start before.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from odoo_gateway_wire.statuses import TaskStatus, event_seq
from shared.config import Settings
from shared.errors import PermanentTaskError
from shared.events import ErrorInfo, TaskEvent
from shared.kinds import KINDS, OdooCall, TaskKind, task_reference
from shared.store import TaskRecord, TaskStore, Turn, Waiter
from workers import metrics
from workers.anomalies import record_anomaly
from workers.classify import Classified, FailureClass, classify

__all__ = ["RetryLater", "TaskAbandoned", "TaskAttempt", "TaskRunner", "UntrustedMessage", "backoff_seconds"]

log = logging.getLogger(__name__)

#: Failure codes that mean something other than this worker changed what it works on.
_ANOMALY_CODES = frozenset({"inventory_interference"})


class TaskAbandoned(Exception):
    """The task ended ``failed``; its message goes to the dead-letter queue."""


class UntrustedMessage(TaskAbandoned):
    """The message does not match an accepted task: never applied, dead-lettered."""


class RetryLater(Exception):
    """Retry the task after ``delay`` seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__(f"retry in {delay:.1f}s")
        self.delay = delay


@dataclass(frozen=True)
class TaskAttempt:
    task_id: str
    kind: str
    payload: dict[str, Any]
    attempt: int  # 1-based; the same for a redelivered message
    redelivered: bool = False


def backoff_seconds(attempt: int, minimum: float, maximum: float, rand: Callable[[], float]) -> float:
    """Exponential backoff with jitter: uniform in [cap/2, cap], cap = min * 2**(attempt-1)."""
    cap = min(maximum, minimum * 2.0 ** (attempt - 1))
    return cap / 2 + rand() * cap / 2


#: The first lease of an attempt runs this much longer than ``TASK_LEASE_SECONDS``, so
#: that a write starting within this time of it needs no renewal (one store transaction
#: fewer per task): the lease still ends at least ``TASK_LEASE_SECONDS`` after the write
#: began. The price: a task whose worker died waits up to this much longer for its retry.
LOOKUP_SLACK_SECONDS = 2.0


class _Attempt:
    """State of one attempt: the task's records, whether a write may be in flight, and
    when its lease was taken and whether it is released already."""

    def __init__(self, resource_keys: tuple[str, ...], attempt_base: int = 0) -> None:
        self.resource_keys = resource_keys
        self.attempt_base = attempt_base  # attempts before an operator reopened the task
        self.write_started = False
        self.write_ambiguous = False
        self.leased_at = 0.0
        self.lease_released = False


class TaskRunner:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        odoo: OdooCall,
        publish: Callable[[TaskEvent], None],
        *,
        worker_id: str,
        wake: Callable[[list[Waiter]], None] = lambda waiters: None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        self.odoo = odoo
        self.publish = publish
        self.wake = wake
        self.worker_id = worker_id
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    def run(self, task: TaskAttempt) -> None:
        record = self._trusted_record(task)
        if record.status.final:
            self._republish_final(record)
            return
        owner = f"{self.worker_id}/{uuid.uuid4().hex[:8]}"
        state = _Attempt(record.resource_keys, record.attempt_base)
        # Lease, turn and the stored ``running`` event: one store transaction.
        turn, running = self._begin(task, owner, state)
        try:
            if not turn.ready:
                self._park(task, turn)
                return
            # Failures to publish an event propagate as they are (not classified as Odoo
            # failures): Dramatiq retries the message, and the event numbers repeat.
            self._emit(running)
            try:
                kind = KINDS.get(task.kind)
                if kind is None:
                    raise PermanentTaskError(f"This worker does not know the task kind '{task.kind}'.")
                result = self._apply(kind, task, owner, state)
            except Exception as exc:
                self._settle_failure(task, classify(exc), state, owner)
            self._finish(task, state, TaskStatus.SUCCEEDED, owner, result=result)
        finally:
            # A write that may still be running in Odoo keeps the lease until it lapses.
            if not state.write_ambiguous and not state.lease_released:
                self.store.release_lease(task.task_id, owner)

    def _apply(self, kind: TaskKind, task: TaskAttempt, owner: str, state: _Attempt) -> dict[str, Any]:
        ref = task_reference(task.task_id)
        found = kind.find_effect(self.odoo, ref, task.payload)
        if found is not None:
            log.info("task %s effect already in odoo; not applying again", task.task_id)
            return {**found, "already_applied": True}
        # The lease must outlive this write in Odoo by TASK_LEASE_SECONDS: renew it unless
        # the first lease (taken with the slack) does already.
        now = self.clock()
        if now > state.leased_at + LOOKUP_SLACK_SECONDS:
            self.store.acquire_lease(task.task_id, owner, now, self.settings.effective_lease_seconds)
        state.write_started = True
        try:
            return kind.apply(self.odoo, ref, task.payload)
        except Exception as exc:
            if classify(exc).failure is not FailureClass.AMBIGUOUS:
                raise
            state.write_ambiguous = True
            log.warning("task %s ambiguous failure (%r); looking for its effect", task.task_id, exc)
            found = kind.find_effect(self.odoo, ref, task.payload)
            if found is None:
                raise
            state.write_ambiguous = False
            return found

    def _trusted_record(self, task: TaskAttempt) -> TaskRecord:
        """The accepted task this message stands for; anything else is never applied."""
        record = self.store.get(task.task_id)
        if record is None:
            record_anomaly("unknown_task", task.task_id, "a task message for a task the store does not know")
            raise UntrustedMessage(f"task {task.task_id} is not in the task store")
        if record.kind != task.kind or (record.payload is not None and record.payload != task.payload):
            record_anomaly("message_mismatch", task.task_id, "the message's kind or payload differs from the store's")
            raise UntrustedMessage(f"task {task.task_id}: the message differs from the accepted task")
        return record

    def _republish_final(self, record: TaskRecord) -> None:
        """A late duplicate, or a redelivery after the final event was stored and the
        process died before publishing it: publish it (again; the relay drops duplicates)."""
        log.info("task %s already %s; not run again", record.id, record.status)
        final = self.store.events_after(record.id, record.seq - 1, limit=1)
        if final and final[0].seq == record.seq:
            self._emit(final[0])

    def _park(self, task: TaskAttempt, turn: Turn) -> None:
        """The task was parked behind an older one (begin_attempt): publish ``waiting``."""
        records = ", ".join(turn.blocked_keys)
        message = (
            f"Queued behind task {turn.blocked_by}, accepted earlier for the same Odoo record(s) ({records}); "
            "it starts as soon as that one ends."
        )
        reason = ErrorInfo(code="queued", message=message, blocked_by=turn.blocked_by)
        self._emit(self._event(task, TaskStatus.WAITING, error=reason))

    def _finish(
        self,
        task: TaskAttempt,
        state: _Attempt,
        status: TaskStatus,
        owner: str,
        *,
        result: dict[str, Any] | None = None,
        error: ErrorInfo | None = None,
    ) -> None:
        """Store the final event (which frees the task's records) and release the lease in
        one transaction, wake the next tasks in line, then publish the event. If the
        publish fails, the redelivery finds the task final and publishes it again."""
        event = self._event(task, status, result=result, error=error)
        # A write that may still be running in Odoo keeps the lease until it lapses.
        release = not state.write_ambiguous
        if self.store.finish_attempt(event, owner if release else None):
            metrics.task_finished(task.kind, status.value)
        state.lease_released = release
        if state.resource_keys:
            try:
                waiters = self.store.wake_waiters(self.clock(), keys=state.resource_keys)
                if waiters:
                    self.wake(waiters)
            except Exception as exc:  # the sweeper wakes them instead
                log.warning("task %s could not wake the tasks queued behind it (%r)", task.task_id, exc)
        self._emit(event)

    def sweep(self) -> int:
        """Wake parked tasks whose turn has come but whose waker died; the number woken."""
        waiters = self.store.wake_waiters(self.clock(), rewake_after=self.settings.wake_rewake_seconds)
        if waiters:
            log.info("sweeper woke %d queued task(s)", len(waiters))
            self.wake(waiters)
        return len(waiters)

    def _settle_failure(self, task: TaskAttempt, failure: Classified, state: _Attempt, owner: str) -> NoReturn:
        if failure.code in _ANOMALY_CODES:
            record_anomaly(failure.code, task.task_id, failure.message)
        if failure.failure is FailureClass.PERMANENT:
            error = ErrorInfo(code=failure.code, message=failure.message)
            self._finish(task, state, TaskStatus.FAILED, owner, error=error)
            raise TaskAbandoned(failure.message)
        attempts = task.attempt - state.attempt_base
        if attempts >= self.settings.max_attempts:
            message = f"Gave up after {attempts} attempts. Last error: {failure.message}"
            self._finish(task, state, TaskStatus.FAILED, owner, error=ErrorInfo(code=failure.code, message=message))
            raise TaskAbandoned(message)
        delay = backoff_seconds(task.attempt + 1, self.settings.min_backoff, self.settings.max_backoff, self.rand)
        if failure.failure is FailureClass.AMBIGUOUS:
            # The next attempt must not look for the effect before a write that may still
            # be running has finished: wait for the lease to lapse (it may run the lookup
            # slack longer than TASK_LEASE_SECONDS after the write began).
            delay = max(delay, self.settings.effective_lease_seconds + LOOKUP_SLACK_SECONDS + 1.0)
        error = ErrorInfo(code=failure.code, message=failure.message, retry_in_seconds=round(delay, 3))
        self._emit(self._event(task, TaskStatus.RETRYING, error=error))
        raise RetryLater(delay)

    def _begin(self, task: TaskAttempt, owner: str, state: _Attempt) -> tuple[Turn, TaskEvent]:
        """Take the lease (waiting for another holder's to end), then the turn; if the
        turn has come, ``running`` is stored too, all in one store transaction. The turn,
        and the ``running`` event to publish if it has come."""
        ttl = self.settings.effective_lease_seconds
        deadline = self.clock() + 2 * ttl
        while True:
            now = self.clock()
            running = self._event(task, TaskStatus.RUNNING)
            begun = self.store.begin_attempt(
                task.task_id, owner, task.attempt, now, ttl + LOOKUP_SLACK_SECONDS, running
            )
            if begun.lease_wait is None:
                state.leased_at = now
                return begun.turn, running
            wait = begun.lease_wait
            if self.clock() + wait > deadline:
                raise RetryLater(wait)
            log.info("task %s leased by another attempt; waiting %.1fs", task.task_id, wait)
            self.sleep(min(wait + 0.05, 5.0))

    def _event(
        self,
        task: TaskAttempt,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: ErrorInfo | None = None,
    ) -> TaskEvent:
        seq = event_seq(task.attempt, status)
        return TaskEvent(task_id=task.task_id, seq=seq, status=status, attempt=task.attempt, result=result, error=error)

    def _emit(self, event: TaskEvent) -> None:
        self.publish(event)
        metrics.task_event(event.status.value)
        log.info(
            "task %s %s seq=%d attempt=%d%s",
            event.task_id,
            event.status.value,
            event.seq,
            event.attempt,
            f" error={event.error.code}" if event.error else "",
        )
