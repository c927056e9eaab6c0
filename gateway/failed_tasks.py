"""Failed tasks, for operators: list them per tenant, and retry them.

A retry reopens the task in the store (shared/store: a ``retrying`` event with reason
``reopened`` whose seq is above every seq the task had, a fresh attempt budget, a new place
in line on its Odoo records), announces that event to every gateway's sockets, and
publishes the task again, confirmed, as the next attempt. A retry that could not be
published gives the same answer as a failed submission (503): run it again. The worker
looks for the task's effect in Odoo before writing, as on every attempt, so a retry never
applies a task twice.

Replaying a message from ``odoo_tasks.XQ`` in the RabbitMQ console does nothing for a
failed task (the worker sees it final in the store and only republishes its final event):
this is the way to run one again.
"""

from __future__ import annotations

import logging

from gateway.publisher import TaskPublisher
from gateway.relay import EventRelay
from shared.config import Settings
from shared.errors import BrokerUnavailable, NotFound, TaskNotRetryable
from shared.store import AsyncTaskStore, TaskRecord

__all__ = ["FailedTasks"]

log = logging.getLogger(__name__)


class FailedTasks:
    def __init__(self, settings: Settings, store: AsyncTaskStore, publisher: TaskPublisher, relay: EventRelay) -> None:
        self._store = store
        self._publisher = publisher
        self._relay = relay
        self._claim_ttl = settings.publish_timeout + 5.0

    async def list(self, tenant: str | None, limit: int, before: float | None) -> list[TaskRecord]:
        return await self._store.list_failed(tenant, limit, before)

    async def retry(self, task_id: str) -> TaskRecord:
        reopened = await self._store.reopen(task_id, self._claim_ttl)
        if reopened is None:
            task = await self._store.get(task_id)
            if task is None:
                raise NotFound("No such task.")
            if task.payload is None:
                raise TaskNotRetryable("Retention removed this task's payload; it cannot run again. Submit it anew.")
            raise TaskNotRetryable(f"The task is {task.status.value}, not failed (or its retry is being published).")
        if reopened.event is not None:
            await self._relay.announce(reopened.event)
        try:
            await self._publisher.publish(reopened.task, reopened.attempt)
        except BrokerUnavailable:
            await self._store.release_publish_claim(task_id)
            log.warning("task %s reopened but not published; the operator is told to retry", task_id)
            raise
        self._store.mark_published_later(task_id)
        log.info(
            "task %s reopened by an operator tenant=%s attempt=%d", task_id, reopened.task.principal, reopened.attempt
        )
        return reopened.task
