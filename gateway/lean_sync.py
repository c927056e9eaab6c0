"""Lean stand-ins for the two asyncio primitives uvicorn's WebSocket protocol keeps per
connection: ``asyncio.Queue`` (three deques, ~3 KiB) and ``asyncio.Event`` (a deque,
~0.6 KiB). An idle socket needs neither to hold anything, so these allocate their waiter
lists only while someone waits: about 4 KiB less per socket (README "Performance").

Only what the protocol uses is here: ``put_nowait``/``get``/``empty``/``qsize`` and
``set``/``clear``/``is_set``/``wait``. A cancelled ``get`` loses no item: an item leaves
the queue only when a getter takes it.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

__all__ = ["LeanEvent", "LeanQueue"]

T = TypeVar("T")


class _Waiters:
    """Coroutines parked until woken; the list exists only while one waits."""

    __slots__ = ("_futures",)

    def __init__(self) -> None:
        self._futures: list[asyncio.Future[None]] | None = None

    def wake_all(self) -> None:
        for waiter in self._futures or ():
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._futures is None:
            self._futures = []
        self._futures.append(waiter)
        try:
            await waiter
        finally:
            self._futures.remove(waiter)
            if not self._futures:
                self._futures = None


class LeanQueue(Generic[T]):
    """An unbounded FIFO queue for one event loop."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters = _Waiters()

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._getters.wake_all()

    async def get(self) -> T:
        while not self._items:
            await self._getters.wait()
        return self._items.pop(0)

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)


class LeanEvent:
    """A flag that coroutines can wait for."""

    __slots__ = ("_value", "_waiters")

    def __init__(self) -> None:
        self._value = False
        self._waiters = _Waiters()

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            self._waiters.wake_all()

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if not self._value:
            await self._waiters.wait()
        return True
