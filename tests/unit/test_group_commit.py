"""Group commit: one writer; what arrives meanwhile goes in the next batch, in order."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shared.errors import StoreUnavailable
from shared.store import NewTask
from shared.store.group_commit import GroupCommit
from shared.store.records import TaskRecord


def new(n: int) -> NewTask:
    return NewTask(id=f"t{n}", principal="demo", idempotency_key=f"k{n}", fingerprint="fp", kind="k", payload={})


class FakeStore:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[tuple[list[str], list[str]]] = []
        self.fail = fail

    async def run(
        self, news: Sequence[NewTask], marks: Sequence[str], now: float, ttl: float
    ) -> list[tuple[TaskRecord, bool]]:
        self.batches.append(([n.id for n in news], list(marks)))
        await asyncio.sleep(0.01)  # the commit: everything arriving now waits for the next batch
        if self.fail:
            raise StoreUnavailable("down")
        return [(n.id, True) for n in news]  # type: ignore[misc]


async def test_submissions_arriving_during_a_commit_share_the_next_one() -> None:
    store = FakeStore()
    commit = GroupCommit(store.run)
    first = asyncio.create_task(commit.create_or_get(new(0), 10))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(commit.create_or_get(new(n), 10)) for n in range(1, 100)]
    commit.mark_published("t-old")
    results = await asyncio.gather(first, *rest)
    assert [r[0] for r in results] == [f"t{n}" for n in range(100)]  # each gets its own answer
    assert [len(news) for news, _ in store.batches] == [1, 99]
    assert sum((marks for _, marks in store.batches), []) == ["t-old"]  # the mark rode along, once


async def test_a_failed_commit_fails_every_waiter_of_that_batch_only() -> None:
    store = FakeStore(fail=True)
    commit = GroupCommit(store.run)
    results = await asyncio.gather(*(commit.create_or_get(new(n), 10) for n in range(5)), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)
    store.fail = False
    assert (await commit.create_or_get(new(9), 10))[0] == "t9"  # type: ignore[comparison-overlap]


async def test_flush_waits_for_queued_marks() -> None:
    store = FakeStore()
    commit = GroupCommit(store.run)
    commit.mark_published("a")
    commit.mark_published("b")
    await commit.flush()
    assert store.batches == [([], ["a", "b"])]


@pytest.mark.parametrize("size", [300])
async def test_batches_are_bounded(size: int) -> None:
    store = FakeStore()
    commit = GroupCommit(store.run)
    await asyncio.gather(*(commit.create_or_get(new(n), 10) for n in range(size)))
    assert max(len(news) for news, _ in store.batches) <= 256
