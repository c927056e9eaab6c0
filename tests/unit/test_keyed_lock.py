"""Per-key FIFO locks: one key's holders run one at a time in arrival order, other keys
run alongside, and a key nobody uses holds no entry."""

from __future__ import annotations

import asyncio

from gateway.keyed_lock import KeyedLock


async def test_one_key_runs_in_arrival_order_other_keys_alongside() -> None:
    locks = KeyedLock()
    order: list[str] = []
    gate = asyncio.Event()

    async def use(key: str, name: str, wait: bool) -> None:
        async with locks.hold(key):
            order.append(f"{name} in")
            if wait:
                await gate.wait()
            order.append(f"{name} out")

    first = asyncio.create_task(use("t1", "a", wait=True))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(use("t1", name, wait=False)) for name in ("b", "c")]
    other = asyncio.create_task(use("t2", "x", wait=False))
    await other  # t2 is not held up by t1
    assert order == ["a in", "x in", "x out"]
    assert len(locks) == 1
    gate.set()
    await asyncio.gather(first, *rest)
    assert order[3:] == ["a out", "b in", "b out", "c in", "c out"]
    assert len(locks) == 0


async def test_an_error_releases_the_key() -> None:
    locks = KeyedLock()
    try:
        async with locks.hold("t"):
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert len(locks) == 0
    async with locks.hold("t"):
        assert len(locks) == 1
