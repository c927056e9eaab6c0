"""Batched reads: many small store reads share one hop to the store's threads.

Each ``run_in_executor`` costs the event loop a thread hand-over (a future, a condition,
a wake-up): under a resume storm or many polls that costs more CPU than the read itself.
Here a read that arrives while ``max_hops`` hops are already out waits for the next one,
which carries every read queued by then (up to ``max_batch``), so N concurrent reads cost
about N / batch hops; a lone read still goes at once, on a hop of its own. Several hops
stay in flight so a slow database round trip does not hold up every other read.

Within a hop, reads of a kind the store can do many at once (``grouped``: a resume's task
and events) are one read for all of them: in a resume storm, two statements per hop
instead of two per socket. With ``linger``, a hop that starts within that long of the
last one's end waits that long first, so that reads arriving one by one under load
(sockets reconnecting one after another) share hops too; a read after a quiet spell
still goes at once.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar, cast

__all__ = ["ReadBatcher"]

T = TypeVar("T")
Outcome = tuple[bool, Any]  # (True, value) or (False, exception)
RunInThread = Callable[[Callable[[], list[Outcome]]], Awaitable[list[Outcome]]]
Grouped = dict[Callable[..., Any], Callable[[list[tuple[Any, ...]]], list[Any]]]


def batched_reads(thunks: list[Callable[[], Any]], grouped: Grouped | None = None) -> list[Outcome]:
    """Each read's outcome, in order. Reads of a function that ``grouped`` maps to a
    many-at-once form (``fn(*args)`` for each args -> ``many([args, ...])``) go to it
    together; if that fails, each is read on its own, and fails alone."""
    results: list[Outcome | None] = [None] * len(thunks)
    for fn, many in (grouped or {}).items():
        picked = [i for i, thunk in enumerate(thunks) if isinstance(thunk, partial) and thunk.func == fn]
        if len(picked) < 2:
            continue
        try:
            values = many([cast(partial[Any], thunks[i]).args for i in picked])
        except Exception:
            continue
        for i, value in zip(picked, values, strict=True):
            results[i] = (True, value)
    out: list[Outcome] = []
    for thunk, result in zip(thunks, results, strict=True):
        if result is None:
            try:
                result = (True, thunk())
            except Exception as exc:  # each read fails alone; the caller re-raises it
                result = (False, exc)
        out.append(result)
    return out


class ReadBatcher:
    def __init__(
        self,
        run_in_thread: RunInThread,
        *,
        max_hops: int = 4,
        max_batch: int = 256,
        grouped: Grouped | None = None,
        linger: float = 0.0,
    ) -> None:
        self._run = run_in_thread
        self._grouped = grouped
        self._linger = linger
        self._lingering = False
        self._last_done = -math.inf
        self._max_hops = max_hops
        self._max_batch = max_batch
        self._queue: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._hops = 0

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((partial(fn, *args), future))
        if self._hops < self._max_hops and not self._lingering:
            self._hops += 1
            asyncio.create_task(self._hop(), name="store-read-batch")
        return await future

    async def call_many(self, fn: Callable[..., T], calls: list[tuple[Any, ...]]) -> list[T]:
        """``fn(*args)`` for each of ``calls``, queued together (so they share hops)."""
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[T]] = []
        for args in calls:
            futures.append(loop.create_future())
            self._queue.append((partial(fn, *args), futures[-1]))
        if futures and self._hops < self._max_hops and not self._lingering:
            self._hops += 1
            asyncio.create_task(self._hop(), name="store-read-batch")
        if len(futures) == 1:
            return [await futures[0]]
        return list(await asyncio.gather(*futures))

    async def _hop(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            if loop.time() - self._last_done < self._linger:
                # Busy (a hop ended a moment ago): wait that moment, so this hop carries the
                # reads that come meanwhile instead of one each. A read after a quiet spell
                # goes at once.
                self._lingering = True
                try:
                    await asyncio.sleep(self._linger)
                finally:
                    self._lingering = False
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                try:
                    outcomes = await self._run(partial(batched_reads, [thunk for thunk, _ in batch], self._grouped))
                except Exception as exc:  # the hop itself failed (pool shut down): every read in it did
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                except BaseException:
                    for _, future in batch:
                        future.cancel()
                    raise
                finally:
                    self._last_done = loop.time()
                for (_, future), (ok, value) in zip(batch, outcomes, strict=True):
                    if future.done():  # its caller was cancelled
                        continue
                    if ok:
                        future.set_result(value)
                    else:
                        future.set_exception(value)
        finally:
            self._hops -= 1
