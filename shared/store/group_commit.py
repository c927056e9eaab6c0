"""Group commit for the accept path.

One writer at a time: every submission that arrives while a batch is being committed
waits for the next batch, so under load N submissions cost one transaction and one fsync
instead of N, and 16 threads no longer queue on SQLite's single writer lock. The
``published`` marks of acknowledged tasks ride along in the next batch instead of costing
each acknowledgement a transaction of its own (losing them in a crash costs one harmless
republish: workers find the task done, see README "Exactly once").

An answer is still given only after the batch holding the task committed (fsync'd).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

from shared.store.records import NewTask, TaskRecord

__all__ = ["MAX_BATCH", "GroupCommit"]

log = logging.getLogger(__name__)
MAX_BATCH = 256

Accepted = tuple[TaskRecord, bool]
RunBatch = Callable[[Sequence[NewTask], Sequence[str], float, float], Awaitable[list[Accepted]]]


class GroupCommit:
    def __init__(self, run_batch: RunBatch) -> None:
        self._run_batch = run_batch
        self._creates: list[tuple[NewTask, float, asyncio.Future[Accepted]]] = []
        self._marks: list[str] = []
        self._writer: asyncio.Task[None] | None = None

    async def create_or_get(self, new: NewTask, claim_ttl: float) -> Accepted:
        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._creates.append((new, claim_ttl, future))
        self._wake()
        return await future

    def mark_published(self, task_id: str) -> None:
        """Recorded with the next batch; never awaited by an acknowledgement."""
        self._marks.append(task_id)
        self._wake()

    async def flush(self) -> None:
        """Wait until everything queued so far is committed (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    def _wake(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="store-group-commit")

    async def _drain(self) -> None:
        while self._creates or self._marks:
            ttl = self._creates[0][1] if self._creates else 0.0
            batch: list[tuple[NewTask, float, asyncio.Future[Accepted]]] = []
            rest: list[tuple[NewTask, float, asyncio.Future[Accepted]]] = []
            for item in self._creates:  # one claim TTL per batch, in arrival order
                (batch if item[1] == ttl and len(batch) < MAX_BATCH else rest).append(item)
            self._creates = rest
            marks, self._marks = self._marks[: 4 * MAX_BATCH], self._marks[4 * MAX_BATCH :]
            try:
                results = await self._run_batch([new for new, _, _ in batch], marks, time.time(), ttl)
            except Exception as exc:
                if marks:
                    log.warning(
                        "%d published marks not recorded (%s); those tasks may be published again", len(marks), exc
                    )
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, _, future), result in zip(batch, results, strict=True):
                if not future.done():  # its request may have been cancelled meanwhile
                    future.set_result(result)
