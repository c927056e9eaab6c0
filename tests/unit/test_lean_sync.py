"""The lean queue and event behave as asyncio's do where uvicorn's protocol relies on them."""

from __future__ import annotations

import asyncio

import pytest

from gateway.lean_sync import LeanEvent, LeanQueue


async def test_queue_is_fifo_and_get_waits_for_a_put() -> None:
    queue: LeanQueue[int] = LeanQueue()
    assert queue.empty() and queue.qsize() == 0
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    assert not getter.done()
    queue.put_nowait(1)
    queue.put_nowait(2)
    assert await getter == 1
    assert queue.qsize() == 1 and await queue.get() == 2 and queue.empty()


async def test_a_cancelled_get_loses_no_item() -> None:
    queue: LeanQueue[str] = LeanQueue()
    getter = asyncio.create_task(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait("kept")  # wakes the getter, which is cancelled before it runs
    getter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await getter
    assert await queue.get() == "kept"


async def test_several_getters_each_get_one_item() -> None:
    queue: LeanQueue[int] = LeanQueue()
    getters = [asyncio.create_task(queue.get()) for _ in range(3)]
    await asyncio.sleep(0)
    for n in range(3):
        queue.put_nowait(n)
    assert sorted(await asyncio.gather(*getters)) == [0, 1, 2]


async def test_event_wait_returns_at_once_when_set_and_wakes_every_waiter() -> None:
    event = LeanEvent()
    assert not event.is_set()
    waiters = [asyncio.create_task(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert await event.wait() is True
    event.clear()
    late = asyncio.create_task(event.wait())
    await asyncio.sleep(0)
    assert not late.done()
    late.cancel()
    with pytest.raises(asyncio.CancelledError):
        await late
    event.set()  # a cancelled waiter is gone: nothing to wake, nothing raised
