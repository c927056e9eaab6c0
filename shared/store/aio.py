"""The task store for asyncio code: each call runs on a small dedicated thread pool, so a
slow disk or database never blocks the event loop and concurrency stays bounded."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import ParamSpec, TypeVar

from shared.events import TaskEvent
from shared.store.base import TaskStore
from shared.store.group_commit import GroupCommit
from shared.store.read_batch import ReadBatcher
from shared.store.records import NewTask, PurgeReport, Reopened, TaskRecord

__all__ = ["AsyncTaskStore"]

# How long a resume's read may wait for others to share its hop, when reads are busy.
_RESUME_LINGER = 0.002

P = ParamSpec("P")
R = TypeVar("R")


def _operation(fn: Callable[..., object]) -> str:
    """The store operation's name for metrics, looking through ``functools.partial``
    (a hop of batched reads is named ``batched_reads``)."""
    while isinstance(fn, partial):
        fn = fn.func
    return getattr(fn, "__name__", "call")


class AsyncTaskStore:
    def __init__(
        self, store: TaskStore, *, threads: int = 16, observe: Callable[[str, float], None] | None = None
    ) -> None:
        self.sync = store
        #: Called with each call's operation name and seconds (the gateway's metrics).
        self._observe = observe
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")
        self._accepts = GroupCommit(lambda *args: self._run(self.sync.accept_batch, *args))
        self._reads = ReadBatcher(self._run)
        # A resume's reads, batched apart: one hop at a time, lingering under load
        # (reconnects arrive one by one, each with its read), and a hop reads all that
        # came meanwhile in two statements.
        self._resume_reads = ReadBatcher(
            self._run, max_hops=1, grouped={store.task_and_events: store.task_and_events_many}, linger=_RESUME_LINGER
        )

    async def _run(self, fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        try:
            return await loop.run_in_executor(self._pool, lambda: fn(*args, **kwargs))
        finally:
            if self._observe is not None:
                self._observe(_operation(fn), time.perf_counter() - started)

    async def migrate(self) -> None:
        await self._run(self.sync.migrate)

    async def ping(self) -> None:
        await self._run(self.sync.ping)

    async def create_or_get(self, new: NewTask, claim_ttl: float) -> tuple[TaskRecord, bool]:
        """Committed in a group with every submission waiting at that moment (group_commit.py)."""
        return await self._accepts.create_or_get(new, claim_ttl)

    async def claim_publish(self, task_id: str, ttl: float) -> bool:
        return await self._run(self.sync.claim_publish, task_id, time.time(), ttl)

    def mark_published_later(self, task_id: str) -> None:
        """Recorded with the next group commit, without holding up the caller."""
        self._accepts.mark_published(task_id)

    async def release_publish_claim(self, task_id: str) -> None:
        await self._run(self.sync.release_publish_claim, task_id)

    async def get(self, task_id: str) -> TaskRecord | None:
        """Batched with every read waiting at that moment (read_batch.py)."""
        return await self._reads.call(self.sync.get, task_id)

    async def events_after(self, task_id: str, after_seq: int, limit: int = 1000) -> list[TaskEvent]:
        return await self._reads.call(self.sync.events_after, task_id, after_seq, limit)

    async def task_and_events_many(
        self, asks: list[tuple[str, str, int, int]]
    ) -> list[tuple[TaskRecord | None, list[TaskEvent]]]:
        """What a resume reads (base.TaskStore.task_and_events) for each ``(task_id,
        principal, after_seq, limit)``, batched with every other resume's reads."""
        return await self._resume_reads.call_many(self.sync.task_and_events, asks)

    async def apply_event(self, event: TaskEvent) -> bool:
        return await self._run(self.sync.apply_event, event)

    async def list_failed(self, principal: str | None, limit: int, before: float | None) -> list[TaskRecord]:
        return await self._run(self.sync.list_failed, principal, limit, before)

    async def reopen(self, task_id: str, claim_ttl: float) -> Reopened | None:
        return await self._run(self.sync.reopen, task_id, time.time(), claim_ttl)

    async def purge(self, key_window: float, history_window: float) -> PurgeReport:
        return await self._run(self.sync.purge, time.time(), key_window, history_window)

    async def close(self) -> None:
        await self._accepts.flush()
        await self._run(self.sync.close)
        self._pool.shutdown(wait=False)
