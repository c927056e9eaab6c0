"""The compact form of protocol v1: every frame type round-trips, and v1 stays v1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from odoo_gateway_wire.compact import (
    COMPACT_SUBPROTOCOL,
    STATUS_CODES,
    attempt_of_seq,
    client_frame_from_compact,
    client_frame_to_compact,
    long_task_id,
    server_frame_from_compact,
    short_task_id,
)
from odoo_gateway_wire.frames import accepted_frame, authenticated_frame, encode_frame, pong_frame, resumed_frame
from odoo_gateway_wire.statuses import TaskStatus
from shared.errors import GatewayError, QuotaExceeded, ValidationFailed
from shared.events import TaskEvent
from shared.protocol import (
    AuthFrame,
    PingFrame,
    ResumeFrame,
    SubmitFrame,
    error_frame_of,
    event_frame_of,
    parse_client_frame,
)

TASK = "6c47077b-0e8c-49f1-a649-2b1b3eae0552"
OTHER = "0f1e2d3c-4b5a-4968-8776-655443322110"
RESULT = {"move_ids": [3], "quant_ids": [1], "changed": True, "unchanged_products": []}


def _event(seq: int, status: TaskStatus, result: dict[str, Any] | None = None) -> TaskEvent:
    return TaskEvent(task_id=TASK, seq=seq, status=status, attempt=attempt_of_seq(seq), result=result, at=1.5)


def _round_trip(frame: dict[str, Any]) -> dict[str, Any]:
    return server_frame_from_compact(json.loads(encode_frame(frame, compact=True)))


def test_the_subprotocol_name() -> None:
    assert COMPACT_SUBPROTOCOL == "gateway.v1c"


@pytest.mark.parametrize(
    "frame",
    [
        accepted_frame("s1", TASK, False, TaskStatus.ACCEPTED),
        accepted_frame(7, TASK, True, TaskStatus.RUNNING),
        authenticated_frame("a1", "demo"),
        pong_frame("p1"),
        pong_frame(None),
        resumed_frame("r1", {TASK: (TaskStatus.SUCCEEDED, 4, True), OTHER: (TaskStatus.RUNNING, 2, False)}, ["x"]),
        resumed_frame("r2", {TASK: (TaskStatus.ACCEPTED, 0, True)}, []),
        error_frame_of("s2", ValidationFailed("bad", details=[{"loc": ["payload"], "msg": "m", "type": "t"}])),
        error_frame_of(None, QuotaExceeded("slow down", retry_after_seconds=3)),
    ],
)
def test_every_server_frame_round_trips(frame: dict[str, Any]) -> None:
    assert _round_trip(frame) == frame


@pytest.mark.parametrize("status", list(TaskStatus))
def test_events_round_trip_without_at_and_with_a_trimmed_result(status: TaskStatus) -> None:
    event = _event(6, status, RESULT if status is TaskStatus.SUCCEEDED else None)
    expected = {k: v for k, v in event_frame_of(event).items() if k != "at"}
    if expected["result"] is not None:
        expected["result"] = {"move_ids": [3], "quant_ids": [1], "changed": True}
    assert _round_trip(event_frame_of(event)) == expected


def test_compact_frames_leave_out_what_the_client_knows() -> None:
    assert json.loads(encode_frame(accepted_frame("s1", TASK, False, TaskStatus.ACCEPTED), compact=True)) == {
        "t": "k",
        "r": "s1",
        "i": short_task_id(TASK),
    }
    assert encode_frame(event_frame_of(_event(2, TaskStatus.RUNNING)), compact=True) == (
        '{"t":"e","i":"bEcHew6MSfGmSSsbPq4FUg","q":2,"s":"r"}'
    )
    assert encode_frame(pong_frame(None), compact=True) == '{"t":"p"}'
    assert encode_frame(resumed_frame("r", {}, []), compact=True) == '{"t":"r","r":"r","ts":{}}'


def test_v1_encoding_is_unchanged() -> None:
    assert encode_frame(pong_frame("p")) == '{"type":"pong","ref":"p"}'
    assert encode_frame(accepted_frame("s1", TASK, False, TaskStatus.ACCEPTED)) == (
        f'{{"type":"accepted","ref":"s1","task_id":"{TASK}","seq":0,"duplicate":false,"status":"accepted"}}'
    )


def test_the_folded_accepted_carries_the_outcome() -> None:
    frame = accepted_frame("s1", TASK, True, TaskStatus.SUCCEEDED)
    frame.update(seq=4, result=RESULT, error=None)
    compact = json.loads(encode_frame(frame, compact=True))
    assert compact == {
        "t": "k",
        "r": "s1",
        "i": short_task_id(TASK),
        "q": 4,
        "d": True,
        "s": "s",
        "v": {"move_ids": [3], "quant_ids": [1], "changed": True},
    }
    assert server_frame_from_compact(compact)["status"] == "succeeded"


def test_task_ids_shorten_and_come_back() -> None:
    assert len(short_task_id(TASK)) == 22
    assert long_task_id(short_task_id(TASK)) == TASK
    for odd in ("not-a-uuid", TASK.upper(), "x" * 22):
        assert short_task_id(odd) == odd  # only canonical UUIDs (the gateway's ids) shorten
    assert long_task_id("not 22 characters") == "not 22 characters"


def test_statuses_have_one_letter_each() -> None:
    assert set(STATUS_CODES) == {s.value for s in TaskStatus}
    assert len(set(STATUS_CODES.values())) == len(STATUS_CODES)
    assert all(len(code) == 1 for code in STATUS_CODES.values())


def test_attempts_derive_from_seqs() -> None:
    assert [attempt_of_seq(s) for s in (0, 1, 2, 3, 4, 5, 8, 9)] == [0, 1, 1, 1, 1, 2, 2, 3]


@pytest.mark.parametrize(
    ("frame", "parsed"),
    [
        ({"type": "auth", "ref": "a", "token": "t"}, AuthFrame),
        (
            {"type": "submit", "ref": 1, "idempotency_key": "k", "kind": "inventory.adjust", "payload": {"a": 1}},
            SubmitFrame,
        ),
        ({"type": "resume", "ref": "r", "tasks": {TASK: 2}}, ResumeFrame),
        ({"type": "ping", "ref": "p"}, PingFrame),
        ({"type": "ping"}, PingFrame),
    ],
)
def test_every_client_frame_round_trips(frame: dict[str, Any], parsed: type[Any]) -> None:
    compact = client_frame_to_compact(frame)
    assert client_frame_from_compact(compact) == frame
    assert parse_client_frame(json.dumps(compact), compact=True) == parse_client_frame(json.dumps(frame))
    assert isinstance(parse_client_frame(json.dumps(compact), compact=True), parsed)


def test_a_bad_compact_frame_is_named_in_v1_terms() -> None:
    with pytest.raises(ValidationFailed) as caught:
        parse_client_frame('{"t":"s","r":"s1","n":"inventory.adjust","p":{}}', compact=True)
    assert caught.value.ref == "s1"
    assert "idempotency_key" in json.dumps(caught.value.details)


@pytest.mark.parametrize(
    "text", ['{"t":[1],"r":"x"}', '{"t":{},"r":"x"}', '{"t":null}', "[]", '{"t":"s","r":"x"}', '{"t":"q"}']
)
def test_odd_compact_frames_are_refused_cleanly(text: str) -> None:
    with pytest.raises(GatewayError):
        parse_client_frame(text, compact=True)
