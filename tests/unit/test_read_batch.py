"""Batched reads: concurrent reads share hops to the store thread; each read keeps its own
answer or its own error; a lone read is not held back."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.errors import StoreUnavailable
from shared.store.read_batch import ReadBatcher


class Threads:
    """Runs each hop on a real thread, counting hops and the reads they carried."""

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(4)
        self.hops: list[int] = []

    async def run(self, thunk: Callable[[], list[Any]]) -> list[Any]:
        outcomes = await asyncio.get_running_loop().run_in_executor(self.pool, thunk)
        self.hops.append(len(outcomes))
        return outcomes


def read(key: int) -> int:
    if key < 0:
        raise StoreUnavailable(f"no {key}")
    return key * 10


async def test_concurrent_reads_share_hops_and_each_gets_its_own_answer() -> None:
    threads = Threads()
    batcher = ReadBatcher(threads.run, max_hops=2, max_batch=100)
    answers = await asyncio.gather(*(batcher.call(read, n) for n in range(1000)))
    assert answers == [n * 10 for n in range(1000)]
    assert sum(threads.hops) == 1000
    assert len(threads.hops) <= 12, threads.hops  # 2 hops of 1 at once, then batches of up to 100
    assert max(threads.hops) == 100


async def test_a_failing_read_fails_alone() -> None:
    threads = Threads()
    batcher = ReadBatcher(threads.run, max_hops=1)
    results = await asyncio.gather(*(batcher.call(read, n) for n in (1, -1, 2)), return_exceptions=True)
    assert results[0] == 10 and results[2] == 20
    assert isinstance(results[1], StoreUnavailable)


async def test_a_failed_hop_fails_its_reads_and_later_reads_still_go() -> None:
    threads = Threads()
    batcher = ReadBatcher(threads.run, max_hops=1)
    threads.pool.shutdown()
    with pytest.raises(RuntimeError, match="shutdown"):
        await batcher.call(read, 1)
    threads.pool = ThreadPoolExecutor(1)
    assert await batcher.call(read, 2) == 20


async def test_a_lone_read_goes_at_once() -> None:
    threads = Threads()
    batcher = ReadBatcher(threads.run)
    for n in range(5):
        assert await batcher.call(read, n) == n * 10
    assert threads.hops == [1, 1, 1, 1, 1]


async def test_a_cancelled_reader_does_not_break_the_hop() -> None:
    threads = Threads()
    batcher = ReadBatcher(threads.run, max_hops=1)
    first = asyncio.create_task(batcher.call(read, 1))
    second = asyncio.create_task(batcher.call(read, 2))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == 20
    with pytest.raises(asyncio.CancelledError):
        await first


def read_many(calls: list[tuple[int]]) -> list[int]:
    if any(key < 0 for (key,) in calls):
        raise StoreUnavailable("one of them")
    return [key * 10 for (key,) in calls]


async def test_grouped_reads_go_together_and_fall_back_one_by_one() -> None:
    threads = Threads()
    calls: list[int] = []

    def many(args: list[tuple[int]]) -> list[int]:
        calls.append(len(args))
        return read_many(args)

    batcher = ReadBatcher(threads.run, max_hops=1, grouped={read: many})
    assert await batcher.call_many(read, [(n,) for n in range(5)]) == [0, 10, 20, 30, 40]
    assert calls == [5]
    # One failing read makes the group fail: each is then read alone, and fails alone.
    results = await asyncio.gather(*(batcher.call(read, n) for n in (1, -1, 2)), return_exceptions=True)
    assert results[0] == 10 and results[2] == 20 and isinstance(results[1], StoreUnavailable)


async def test_reads_under_load_linger_to_share_a_hop() -> None:
    threads = Threads()
    batcher = ReadBatcher(threads.run, max_hops=1, linger=0.05)
    assert await batcher.call(read, 1) == 10  # after a quiet spell: at once, alone
    # Right after a hop: the next one waits, and carries what arrives meanwhile.
    first = asyncio.create_task(batcher.call(read, 2))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(batcher.call(read, 3))
    assert await first == 20 and await second == 30
    assert threads.hops == [1, 2]
