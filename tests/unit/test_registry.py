"""The registry owns every session's lifecycle: quotas on attach and watch, and a close
that detaches before the session is told to go."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.encoded import EncodedFrame
from gateway.registry import Quotas, SessionRegistry
from odoo_gateway_wire.close_codes import CloseCode
from odoo_gateway_wire.statuses import TaskStatus
from shared.errors import QuotaExceeded
from shared.events import TaskEvent


class FakeSession:
    def __init__(self, id: str, principal: str = "demo", registry: SessionRegistry | None = None) -> None:
        self.id = id
        self.principal = principal
        self.compact = False
        self.frames: list[dict[str, Any]] = []
        self.encoded: list[EncodedFrame] = []
        self.closed: tuple[CloseCode, str] | None = None
        self.registry = registry
        self.attached_when_closed: bool | None = None

    def send(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)

    def send_encoded(self, frame: EncodedFrame) -> None:
        self.frames.append(json.loads(frame.text))
        self.encoded.append(frame)

    def shutdown(self, code: CloseCode, reason: str) -> None:
        self.closed = (code, reason)
        if self.registry is not None:
            self.attached_when_closed = self.registry.is_watching(self.id, "t1")

    def drain(self, code: CloseCode, reason: str) -> None:
        if self.registry is not None:
            self.registry.close(self.id, code, reason)


def event(seq: int, task_id: str = "t1") -> TaskEvent:
    return TaskEvent(task_id=task_id, seq=seq, status=TaskStatus.RUNNING, attempt=1, at=1.0)


def test_sockets_per_tenant_are_bounded_and_freed_on_close() -> None:
    registry = SessionRegistry(Quotas(sockets_per_tenant=2))
    a, b, c = FakeSession("a"), FakeSession("b"), FakeSession("c")
    registry.attach(a)
    registry.attach(b)
    with pytest.raises(QuotaExceeded):
        registry.attach(c)
    registry.attach(FakeSession("x", principal="other"))  # another tenant is not affected
    registry.close("a", CloseCode.SLOW_CONSUMER, "slow")
    assert a.closed == (CloseCode.SLOW_CONSUMER, "slow")
    registry.attach(c)
    assert registry.sockets_of("demo") == 2


def test_close_detaches_before_the_session_is_told() -> None:
    registry = SessionRegistry()
    session = FakeSession("a", registry=registry)
    registry.attach(session)
    registry.watch("a", [("t1", 0)])
    registry.finish_sync("a", "t1", [])
    registry.close("a", CloseCode.SLOW_CONSUMER, "slow")
    assert session.attached_when_closed is False
    registry.deliver(event(2))
    assert session.frames == []  # nothing reaches a closed session
    registry.close("a", CloseCode.SLOW_CONSUMER, "again")  # idempotent
    assert session.closed == (CloseCode.SLOW_CONSUMER, "slow")
    assert len(registry) == 0


def test_watches_per_socket_and_tenant_are_bounded() -> None:
    registry = SessionRegistry(Quotas(watches_per_socket=3, watches_per_tenant=4))
    a, b = FakeSession("a"), FakeSession("b")
    registry.attach(a)
    registry.attach(b)
    registry.watch("a", [("t1", 0), ("t2", 0), ("t3", 0)])
    with pytest.raises(QuotaExceeded, match="socket"):
        registry.watch("a", [("t4", 0)])
    registry.watch("a", [("t1", 0)])  # already watched: costs nothing
    registry.watch("b", [("t5", 0)])
    with pytest.raises(QuotaExceeded, match="tenant"):
        registry.watch("b", [("t6", 0)])
    assert registry.watches_of("demo") == 4
    registry.watch("b", [("t6", 0)], enforce=False)  # a task just accepted here is always watched
    registry.close("a", CloseCode.NORMAL, "bye")
    assert registry.watches_of("demo") == 2
    registry.watch("b", [("t7", 0)])


def test_rewatching_does_not_resend_history() -> None:
    registry = SessionRegistry()
    session = FakeSession("a")
    registry.attach(session)
    registry.watch("a", [("t1", 0)])
    registry.finish_sync("a", "t1", [event(2), event(3)])
    registry.watch("a", [("t1", 0)])  # a replayed resume from seq 0
    registry.finish_sync("a", "t1", [event(2), event(3)])
    assert [f["seq"] for f in session.frames] == [2, 3]


def test_a_pushed_event_is_encoded_once_for_every_socket() -> None:
    registry = SessionRegistry()
    sessions = [FakeSession(f"s{n}") for n in range(3)]
    for session in sessions:
        registry.attach(session)
        registry.watch(session.id, [("t1", 0)])
        registry.finish_sync(session.id, "t1", [])
    registry.deliver(event(2))
    frames = [session.encoded[0] for session in sessions]
    assert frames[0] is frames[1] is frames[2]  # the same object: one encoding
    assert json.loads(frames[0].text)["seq"] == 2


def test_unwatch_gives_back_the_tenants_watches() -> None:
    registry = SessionRegistry(Quotas(watches_per_tenant=2))
    a = FakeSession("a")
    registry.attach(a)
    registry.watch("a", [("t1", 0), ("t2", 0)])
    registry.unwatch("a", ["t2", "t3"])  # t3 was never watched
    assert registry.watches_of("demo") == 1 and not registry.is_watching("a", "t2")
    registry.watch("a", [("t4", 0)])
    registry.unwatch("a", ["t1", "t4"])
    assert registry.watches_of("demo") == 0
    registry.close("a", CloseCode.NORMAL, "bye")
    registry.unwatch("a", ["t1"])  # a closed session: nothing to do
