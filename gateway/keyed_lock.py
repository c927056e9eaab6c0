"""One FIFO lock per key, held only while someone uses it.

The relay uses it per task: aio-pika runs each delivery's callback as its own task, so
without it a slow store write for a task's ``running`` event could let the ``succeeded``
delivered right behind it be announced first, and a socket (which takes each task's seqs
in increasing order only) would never see ``running`` live. ``asyncio.Lock`` wakes its
waiters in arrival order, so the callbacks of one task run in delivery order; tasks with
nothing in flight hold no entry.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

__all__ = ["KeyedLock"]


class KeyedLock:
    def __init__(self) -> None:
        self._held: dict[str, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        """Keys in use (held or waited for)."""
        return len(self._held)

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._held.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._held[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            _, users = self._held[key]
            if users == 1:
                del self._held[key]
            else:
                self._held[key] = (lock, users - 1)
