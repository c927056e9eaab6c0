"""Run one attempt of one task: the exactly-once logic, independent of Dramatiq.

For each attempt:

1. Skip if the task store already holds a final state (a late duplicate).
2. Take the task's lease, so no two workers ever apply the same task at once.
3. Publish ``running``; look in Odoo for the task's effect (by its reference); if it is
   there, the task is done: publish ``succeeded`` with what it produced.
4. Renew the lease, apply the task. On an ambiguous failure look for the effect again.
5. Publish the outcome. Permanent failure or retries exhausted: ``failed`` and
   :class:`TaskAbandoned` (the message goes to the dead-letter queue). Otherwise
   ``retrying`` and :class:`RetryLater`.

The lease is released at the end of an attempt unless a write may still be running in
Odoo (ambiguous failure, or the process died): then it lapses on its own
``lease_seconds`` after the write began, and the next attempt cannot start before.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NoReturn

from shared.config import Settings
from shared.errors import PermanentTaskError
from shared.events import ErrorInfo, TaskEvent, TaskStatus, event_seq
from shared.kinds import KINDS, OdooCall, TaskKind, task_reference
from shared.store import TaskStore
from workers.classify import Classified, FailureClass, classify

__all__ = ["RetryLater", "TaskAbandoned", "TaskAttempt", "TaskRunner", "backoff_seconds"]

log = logging.getLogger(__name__)


class TaskAbandoned(Exception):
    """The task ended ``failed``; its message goes to the dead-letter queue."""


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


class _Attempt:
    """State of one attempt: whether a write may be in flight in Odoo."""

    def __init__(self) -> None:
        self.write_started = False
        self.write_ambiguous = False


class TaskRunner:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        odoo: OdooCall,
        publish: Callable[[TaskEvent], None],
        *,
        worker_id: str,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self.store = store
        self.odoo = odoo
        self.publish = publish
        self.worker_id = worker_id
        self.clock = clock
        self.sleep = sleep
        self.rand = rand

    def run(self, task: TaskAttempt) -> None:
        record = self.store.get(task.task_id)
        if record is not None and record.status.final:
            log.info("task %s already %s; duplicate delivery ignored", task.task_id, record.status)
            return
        owner = f"{self.worker_id}/{uuid.uuid4().hex[:8]}"
        self._acquire_lease(task.task_id, owner)
        state = _Attempt()
        try:
            # Failures to publish an event propagate as they are (not classified as Odoo
            # failures): Dramatiq retries the message, and the event numbers repeat.
            self._emit(task, TaskStatus.RUNNING)
            try:
                kind = KINDS.get(task.kind)
                if kind is None:
                    raise PermanentTaskError(f"This worker does not know the task kind '{task.kind}'.")
                result = self._apply(kind, task, owner, state)
            except Exception as exc:
                self._settle_failure(task, classify(exc))
            self._emit(task, TaskStatus.SUCCEEDED, result=result)
        finally:
            # A write that may still be running in Odoo keeps the lease until it lapses.
            if not state.write_ambiguous:
                self.store.release_lease(task.task_id, owner)

    def _apply(self, kind: TaskKind, task: TaskAttempt, owner: str, state: _Attempt) -> dict[str, Any]:
        ref = task_reference(task.task_id)
        found = kind.find_effect(self.odoo, ref, task.payload)
        if found is not None:
            log.info("task %s effect already in odoo; not applying again", task.task_id)
            return {**found, "already_applied": True}
        # Renew right before writing: the lease must outlive this write in Odoo.
        self.store.acquire_lease(task.task_id, owner, self.clock(), self.settings.effective_lease_seconds)
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

    def _settle_failure(self, task: TaskAttempt, failure: Classified) -> NoReturn:
        if failure.failure is FailureClass.PERMANENT:
            self._emit(task, TaskStatus.FAILED, error=ErrorInfo(code=failure.code, message=failure.message))
            raise TaskAbandoned(failure.message)
        if task.attempt >= self.settings.max_attempts:
            message = f"Gave up after {task.attempt} attempts. Last error: {failure.message}"
            self._emit(task, TaskStatus.FAILED, error=ErrorInfo(code=failure.code, message=message))
            raise TaskAbandoned(message)
        delay = backoff_seconds(task.attempt + 1, self.settings.min_backoff, self.settings.max_backoff, self.rand)
        if failure.failure is FailureClass.AMBIGUOUS:
            # The next attempt must not look for the effect before a write that may still
            # be running has finished: wait for the lease to lapse.
            delay = max(delay, self.settings.effective_lease_seconds + 1.0)
        error = ErrorInfo(code=failure.code, message=failure.message, retry_in_seconds=round(delay, 3))
        self._emit(task, TaskStatus.RETRYING, error=error)
        raise RetryLater(delay)

    def _acquire_lease(self, task_id: str, owner: str) -> None:
        ttl = self.settings.effective_lease_seconds
        deadline = self.clock() + 2 * ttl
        while (wait := self.store.acquire_lease(task_id, owner, self.clock(), ttl)) is not None:
            if self.clock() + wait > deadline:
                raise RetryLater(wait)
            log.info("task %s leased by another attempt; waiting %.1fs", task_id, wait)
            self.sleep(min(wait + 0.05, 5.0))

    def _emit(
        self,
        task: TaskAttempt,
        status: TaskStatus,
        *,
        result: dict[str, Any] | None = None,
        error: ErrorInfo | None = None,
    ) -> None:
        seq = event_seq(task.attempt, status)
        event = TaskEvent(
            task_id=task.task_id, seq=seq, status=status, attempt=task.attempt, result=result, error=error
        )
        self.publish(event)
        log.info(
            "task %s %s seq=%d attempt=%d%s",
            task.task_id,
            status.value,
            seq,
            task.attempt,
            f" error={error.code}" if error else "",
        )
