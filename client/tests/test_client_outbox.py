"""The client's durable outbox and its reconnect backoff, without any network."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
from websockets.exceptions import ConnectionClosedError

from odoo_gateway_client.backoff import Backoff
from odoo_gateway_client.errors import SubmissionRejected, TaskNotFound
from odoo_gateway_client.handle import TaskEvent, TaskHandle
from odoo_gateway_client.ledger import Ledger
from odoo_gateway_client.outbox import Outbox
from odoo_gateway_client.ws_transport import WsSession

SALE = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "outbox.sqlite3"


def test_a_submission_survives_reopening_with_its_key_and_payload(path: Path) -> None:
    with Outbox(path) as outbox:
        entry, created = outbox.add("key-1", "sale.order.create", SALE)
    assert created
    with Outbox(path) as reopened:
        [again] = reopened.entries()
        assert again == entry
        assert (again.key, again.kind, again.payload, again.status, again.task_id) == (
            "key-1",
            "sale.order.create",
            SALE,
            "pending",
            None,
        )
        assert reopened.unacknowledged() == [again]


def test_the_file_is_durable_and_private(path: Path) -> None:
    with Outbox(path):
        pass
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        db.close()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with Outbox(path) as outbox:
        assert outbox._conn().execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_adding_an_existing_key_returns_the_row_unchanged(path: Path) -> None:
    with Outbox(path) as outbox:
        first, created = outbox.add("key-1", "sale.order.create", SALE)
        again, created_again = outbox.add("key-1", "inventory.adjust", {"other": True})
        assert created and not created_again
        assert again == first
        assert len(outbox.entries()) == 1


def test_acceptance_and_events_advance_the_row_and_stale_events_do_not(path: Path) -> None:
    with Outbox(path) as outbox:
        entry, _ = outbox.add("key-1", "sale.order.create", SALE)
        outbox.mark_accepted(entry.id, "task-1")
        assert outbox.record_event(entry.id, 1, "running")
        assert outbox.record_event(entry.id, 2, "succeeded", {"sale_order_id": 7}, None)
        # A redelivered or replayed event must not move the row back.
        assert not outbox.record_event(entry.id, 1, "running")
        assert not outbox.record_event(entry.id, 2, "succeeded", {"sale_order_id": 7}, None)
        row = outbox.by_task("task-1")
        assert row is not None
        assert (row.status, row.last_seq, row.result, row.settled) == (
            "succeeded",
            2,
            {"sale_order_id": 7},
            True,
        )
        # Accepting again (a duplicate "accepted" after a resend) keeps the progress.
        outbox.mark_accepted(entry.id, "task-1")
        row = outbox.get(entry.id)
        assert row is not None and (row.status, row.last_seq) == ("succeeded", 2)
        assert outbox.unacknowledged() == []


def test_watch_rows_settle_and_remove(path: Path) -> None:
    with Outbox(path) as outbox:
        watched = outbox.watch("task-9")
        assert (watched.key, watched.task_id, watched.status, watched.last_seq) == (
            None,
            "task-9",
            "accepted",
            0,
        )
        assert outbox.watch("task-9") == watched  # one row per task id
        outbox.settle(watched.id, "unknown", {"code": "not_found"})
        row = outbox.get(watched.id)
        assert row is not None and row.settled and row.error == {"code": "not_found"}
        with pytest.raises(ValueError):
            outbox.settle(watched.id, "succeeded", None)
        assert outbox.remove(watched.id)
        assert not outbox.remove(watched.id)
        assert outbox.entries() == []


def test_an_outbox_from_a_newer_client_is_refused(path: Path) -> None:
    with Outbox(path) as outbox:
        outbox._conn().execute("PRAGMA user_version=99")
    with pytest.raises(RuntimeError, match="newer client"):
        Outbox(path)


async def test_ledger_reloads_rows_and_drops_duplicate_events(path: Path) -> None:
    with Outbox(path) as outbox:
        ledger = Ledger(outbox, lambda: None)
        handle = await ledger.add("key-1", "sale.order.create", SALE)
        assert ledger.unsent() == [handle]
        await ledger.accepted(handle, "task-1")
        for seq, status in [(1, "running"), (1, "running"), (2, "retrying"), (1, "running"), (3, "running")]:
            await ledger.event(TaskEvent("task-1", seq, status))
        assert [e.seq for e in handle._events] == [1, 2, 3]
        assert ledger.watched() == {"task-1": 3}

    # After a restart the row is there with its seq: resume asks only for what came after.
    with Outbox(path) as outbox:
        reloaded = Ledger(outbox, lambda: None)
        [again] = reloaded.handles()
        assert (again.key, again.task_id, again.last_seq, again.status) == ("key-1", "task-1", 3, "running")
        assert reloaded.unsent() == []
        assert reloaded.watched() == {"task-1": 3}
        await reloaded.event(TaskEvent("task-1", 4, "succeeded", 2, {"sale_order_id": 7}))
        state = await asyncio.wait_for(again.result(), 1)
        assert (state.status, state.seq, state.result) == ("succeeded", 4, {"sale_order_id": 7})
        assert outbox.entries() == []  # shown to the application, so it left the outbox


async def test_a_submission_is_withdrawn_only_if_it_never_left(path: Path) -> None:
    with Outbox(path) as outbox:
        ledger = Ledger(outbox, lambda: None)
        unsent = await ledger.add("key-1", "sale.order.create", SALE)
        sent = await ledger.add("key-2", "sale.order.create", SALE)
        sent.sends = 1
        assert await ledger.withdraw(unsent)
        assert not await ledger.withdraw(sent)
        assert [e.key for e in outbox.entries()] == ["key-2"]
        # A row loaded from an earlier run may have been sent by that run.
        reloaded = Ledger(outbox, lambda: None)
        [old] = reloaded.handles()
        assert not await reloaded.withdraw(old)


async def test_withdraw_waits_for_an_http_attempt_under_way(path: Path) -> None:
    with Outbox(path) as outbox:
        ledger = Ledger(outbox, lambda: None)
        refused = await ledger.add("key-1", "sale.order.create", SALE)
        arrived = await ledger.add("key-2", "sale.order.create", SALE)

        async def attempt(handle: TaskHandle, connected: bool) -> None:
            handle.sends += 1
            handle.posting += 1
            await asyncio.sleep(0.1)
            if not connected:
                handle.sends -= 1  # connection refused: provably never sent
            handle.posting -= 1

        posts = [asyncio.create_task(attempt(refused, False)), asyncio.create_task(attempt(arrived, True))]
        await asyncio.sleep(0)
        assert await ledger.withdraw(refused)  # waited for the refusal, then dropped it
        assert not await ledger.withdraw(arrived)  # may have arrived: kept, and sendable again
        assert not arrived.held
        await asyncio.gather(*posts)
        assert [e.key for e in outbox.entries()] == ["key-2"]


def test_backoff_grows_exponentially_up_to_the_cap() -> None:
    backoff = Backoff(base=0.5, cap=20.0, rng=lambda: 1.0)
    delays = [backoff.next_delay() for _ in range(10)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 20.0, 20.0, 20.0, 20.0]
    backoff.reset()
    assert backoff.next_delay() == 0.5


def test_backoff_jitter_is_full_and_bounded() -> None:
    draws = iter([0.0, 0.25, 0.999])
    backoff = Backoff(base=1.0, cap=3.0, rng=lambda: next(draws))
    assert backoff.next_delay() == 0.0  # full jitter: down to zero
    assert backoff.next_delay() == pytest.approx(0.5)  # a quarter of 2
    assert backoff.next_delay() == pytest.approx(2.997)  # capped at 3, not 4
    real = Backoff(base=0.5, cap=20.0)
    for attempt in range(40):
        delay = real.next_delay()
        assert 0.0 <= delay <= min(20.0, 0.5 * 2**attempt)
    assert real.ceiling(1000) == 20.0  # no overflow after a very long outage


def test_backoff_rejects_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(base=0, cap=1)


# -- the WebSocket session's protocol logic, on a fake socket ----------------------------------


class FakeSocket:
    """Stands in for a websockets connection: records what is sent, replays scripted frames."""

    subprotocol = None  # v1: the frames scripted here are v1 frames

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.incoming: asyncio.Queue[str | Exception] = asyncio.Queue()

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))

    async def recv(self) -> str:
        item = await self.incoming.get()
        if isinstance(item, Exception):
            raise item
        return item

    def push(self, **frame: Any) -> None:
        self.incoming.put_nowait(json.dumps(frame))

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.sent if f["type"] == kind]


async def until(condition: Callable[[], Any], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.005)


async def no_final(task_id: str) -> TaskEvent | None:
    return None


async def start_session(ledger: Ledger, kick: asyncio.Event) -> tuple[FakeSocket, asyncio.Task[None]]:
    fake = FakeSocket()
    session = WsSession(cast(Any, fake), ledger, kick, no_final)
    return fake, asyncio.create_task(session.run())


async def end(fake: FakeSocket, task: asyncio.Task[None]) -> None:
    fake.incoming.put_nowait(ConnectionClosedError(None, None))
    with pytest.raises(ConnectionClosedError):
        await task


async def test_unavailable_is_resent_with_the_same_key_and_events_are_deduplicated(path: Path) -> None:
    kick = asyncio.Event()
    with Outbox(path) as outbox:
        ledger = Ledger(outbox, kick.set)
        handle = await ledger.add("key-1", "sale.order.create", SALE)
        fake, task = await start_session(ledger, kick)
        await until(lambda: len(fake.of_type("submit")) == 1)
        first = fake.of_type("submit")[0]
        fake.push(type="error", ref=first["ref"], code="broker_unavailable", message="later", retry_after=0.05)
        await until(lambda: len(fake.of_type("submit")) == 2)
        second = fake.of_type("submit")[1]
        assert second["idempotency_key"] == first["idempotency_key"] == "key-1"
        assert second["ref"] != first["ref"] and second["payload"] == SALE
        assert handle.status == "pending"

        fake.push(type="accepted", ref=second["ref"], task_id="task-1", seq=0, duplicate=False)
        assert await asyncio.wait_for(handle.accepted(), 5) == "task-1"
        for seq, status in [(1, "running"), (1, "running"), (2, "succeeded"), (2, "succeeded")]:
            fake.push(type="event", task_id="task-1", seq=seq, status=status, attempt=1, result={"seq": seq})
        seen = [e.seq async for e in handle.events()]
        assert seen == [1, 2]
        assert outbox.entries() == []
        await end(fake, task)


async def test_a_client_error_rejects_the_handle_and_the_row_leaves(path: Path) -> None:
    kick = asyncio.Event()
    with Outbox(path) as outbox:
        ledger = Ledger(outbox, kick.set)
        handle = await ledger.add("key-1", "sale.order.create", SALE)
        fake, task = await start_session(ledger, kick)
        await until(lambda: fake.of_type("submit"))
        ref = fake.of_type("submit")[0]["ref"]
        fake.push(type="error", ref=ref, code="validation_failed", message="bad", details=[{"loc": ["x"]}])
        with pytest.raises(SubmissionRejected) as caught:
            await asyncio.wait_for(handle.accepted(), 5)
        assert (caught.value.code, caught.value.details, caught.value.key) == (
            "validation_failed",
            [{"loc": ["x"]}],
            "key-1",
        )
        assert outbox.entries() == []
        assert len(fake.of_type("submit")) == 1  # never resent
        await end(fake, task)


async def test_resume_sends_last_seq_and_unknown_tasks_fail(path: Path) -> None:
    kick = asyncio.Event()
    with Outbox(path) as outbox:
        known = outbox.watch("task-1")
        outbox.record_event(known.id, 3, "running")
        outbox.watch("task-2")
        ledger = Ledger(outbox, kick.set)
        fake, task = await start_session(ledger, kick)
        await until(lambda: fake.of_type("resume"))
        [resume] = fake.of_type("resume")
        assert resume["tasks"] == {"task-1": 3, "task-2": 0}
        assert not fake.of_type("submit")
        fake.push(
            type="resumed",
            ref=resume["ref"],
            tasks={"task-1": {"status": "running", "seq": 3}},
            unknown=["task-2"],
        )
        [one, two] = ledger.handles()
        with pytest.raises(TaskNotFound):
            await asyncio.wait_for(two.result(), 5)
        fake.push(type="event", task_id="task-1", seq=3, status="running", attempt=2)  # seen before the restart
        fake.push(type="event", task_id="task-1", seq=4, status="failed", attempt=2, error={"code": "permanent"})
        state = await asyncio.wait_for(one.result(), 5)
        assert (state.status, state.seq, state.error) == ("failed", 4, {"code": "permanent"})
        assert outbox.entries() == []
        await end(fake, task)
