"""The submit use case, shared by HTTP and WebSocket: validate, record, publish, answer.

An answer of ``accepted`` is given only after the task is in the store *and* RabbitMQ
confirmed it. Concurrent duplicates (same principal and key) never both publish: the
first claims the publish in the store; the others wait for it to finish.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from gateway import metrics
from gateway.ids import new_task_id
from gateway.publisher import TaskPublisher
from odoo_gateway_wire.fingerprint import fingerprint
from shared.config import Settings
from shared.errors import BrokerUnavailable, GatewayError, IdempotencyKeyReused
from shared.kinds import resource_keys, validate_payload
from shared.store import AsyncTaskStore, NewTask, TaskRecord

__all__ = ["Submissions", "SubmitOutcome"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SubmitOutcome:
    task: TaskRecord
    duplicate: bool


class Submissions:
    def __init__(self, settings: Settings, store: AsyncTaskStore, publisher: TaskPublisher) -> None:
        self._store = store
        self._publisher = publisher
        self._claim_ttl = settings.publish_timeout + 5.0

    async def submit(
        self, principal: str, key: str, kind: str, payload: dict[str, Any], *, transport: str = "http"
    ) -> SubmitOutcome:
        """Accept (or find) the submission; counted by ``transport`` and outcome."""
        try:
            outcome = await self._submit(principal, key, kind, payload)
        except GatewayError as err:
            metrics.submission(transport, err.code)
            raise
        metrics.submission(transport, "duplicate" if outcome.duplicate else "accepted")
        return outcome

    async def _submit(self, principal: str, key: str, kind: str, payload: dict[str, Any]) -> SubmitOutcome:
        normalized = validate_payload(kind, payload)
        new = NewTask(
            id=new_task_id(),
            principal=principal,
            idempotency_key=key,
            fingerprint=fingerprint(kind, normalized),
            kind=kind,
            payload=normalized,
            resource_keys=resource_keys(kind, normalized),
        )
        task, created = await self._store.create_or_get(new, self._claim_ttl)
        if not created and task.fingerprint != new.fingerprint:
            raise IdempotencyKeyReused(
                "This Idempotency-Key was already used for a different submission. Use a new key for a new submission.",
                details={"task_id": task.id},
            )
        if not task.published:
            # A new task comes with the publish claim; a replay of an unpublished one
            # (its publish failed, or is under way elsewhere) must claim it first.
            task = await self._publish_once(task, claimed=created)
        return SubmitOutcome(task=task, duplicate=not created)

    async def _publish_once(self, task: TaskRecord, *, claimed: bool) -> TaskRecord:
        if claimed or await self._store.claim_publish(task.id, self._claim_ttl):
            try:
                await self._publisher.publish(task)
            except BrokerUnavailable:
                await self._store.release_publish_claim(task.id)
                log.warning("task %s publish failed; client told to retry", task.id)
                raise
            self._store.mark_published_later(task.id)
            log.info(
                "task %s accepted kind=%s principal=%s (stored, published, confirmed)",
                task.id,
                task.kind,
                task.principal,
            )
            return task
        # Another request with the same key is publishing: wait for its outcome.
        deadline = asyncio.get_running_loop().time() + self._claim_ttl
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            current = await self._store.get(task.id)
            if current is not None and current.published:
                return current
        raise BrokerUnavailable("The same submission is still being published; retry shortly.")
