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


def _wake(waiters: list[asyncio.Future[None]] | None) -> None:
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)


class LeanQueue(Generic[T]):
    """An unbounded FIFO queue for one event loop."""

    __slots__ = ("_items", "_getters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._getters: list[asyncio.Future[None]] | None = None

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        _wake(self._getters)

    async def get(self) -> T:
        while not self._items:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if self._getters is None:
                self._getters = []
            self._getters.append(waiter)
            try:
                await waiter
            finally:
                self._getters.remove(waiter)
                if not self._getters:
                    self._getters = None
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
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if not self._value:
            self._value = True
            _wake(self._waiters)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            self._waiters.remove(waiter)
            if not self._waiters:
                self._waiters = None
        return True
