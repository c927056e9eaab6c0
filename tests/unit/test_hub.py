"""The connection registry, without sockets: gap-free, duplicate-free, ordered."""

from __future__ import annotations

from gateway.hub import Hub
from odoo_gateway_wire.statuses import TaskStatus
from shared.events import TaskEvent


def ev(seq: int, task: str = "t1") -> TaskEvent:
    status = TaskStatus.RUNNING if seq % 2 else TaskStatus.RETRYING
    return TaskEvent(task_id=task, seq=seq, status=status, attempt=(seq + 1) // 2)


def test_live_events_reach_only_watchers_once_in_order() -> None:
    hub = Hub()
    hub.add("a")
    hub.add("b")
    hub.watch("a", "t1", 0)
    assert hub.finish_sync("a", "t1", []) == []
    assert hub.route(ev(1)) == ["a"]
    assert hub.route(ev(1)) == []  # duplicate
    assert hub.route(ev(1, "t2")) == []  # nobody watches t2


def test_events_during_sync_are_buffered_and_merged_with_the_store() -> None:
    hub = Hub()
    hub.add("a")
    hub.watch("a", "t1", 1)  # the client saw seq 1
    assert hub.route(ev(4)) == []  # buffered while the store is read
    assert hub.route(ev(3)) == []
    sent = hub.finish_sync("a", "t1", [ev(2), ev(3)])
    assert [e.seq for e in sent] == [2, 3, 4]
    assert hub.route(ev(4)) == []  # already sent from the buffer
    assert hub.route(ev(5)) == ["a"]


def test_older_events_than_seen_are_never_sent() -> None:
    hub = Hub()
    hub.add("a")
    hub.watch("a", "t1", 4)
    assert hub.finish_sync("a", "t1", [ev(1), ev(2), ev(3), ev(4)]) == []
    assert hub.route(ev(3)) == []


def test_remove_forgets_watches_and_positions() -> None:
    hub = Hub()
    for conn in ("a", "b"):
        hub.add(conn)
        hub.watch(conn, "t1", 0)
        hub.finish_sync(conn, "t1", [])
    hub.route(ev(1))
    hub.watch("b", "t2", 0)
    hub.finish_sync("b", "t2", [])
    assert hub.positions() == {"t1": 1, "t2": 0}
    hub.remove("b")
    assert hub.positions() == {"t1": 1}
    assert hub.route(ev(2)) == ["a"]
    assert hub.watch_count("a") == 1 and hub.watch_count("b") == 0
    hub.remove("a")
    assert hub.route(ev(3)) == [] and hub.positions() == {}


def test_finish_sync_for_an_unwatched_task_sends_nothing() -> None:
    hub = Hub()
    hub.add("a")
    assert hub.finish_sync("a", "t9", [ev(1, "t9")]) == []


def test_unwatch_drops_the_buffer_and_sends_nothing_more() -> None:
    hub = Hub()
    hub.add("a")
    hub.watch("a", "t1", 0)
    assert hub.route(ev(1)) == []  # buffered while syncing
    assert hub.unwatch("a", "t1") and not hub.unwatch("a", "t1")
    assert hub.finish_sync("a", "t1", [ev(1)]) == []
    assert hub.route(ev(2)) == [] and hub.watch_count("a") == 0 and hub.positions() == {}
    assert not hub.unwatch("nobody", "t1")
