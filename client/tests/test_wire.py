"""The wire module on its own: no server in this environment (see tests/packaging)."""

from __future__ import annotations

import json

import pytest

from odoo_gateway_wire import frames
from odoo_gateway_wire.close_codes import RECONNECT_RULES, CloseCode, should_reconnect
from odoo_gateway_wire.compact import (
    STATUS_CODES,
    client_frame_from_compact,
    server_frame_from_compact,
    short_task_id,
)
from odoo_gateway_wire.error_codes import ErrorCode, is_retryable
from odoo_gateway_wire.fingerprint import fingerprint
from odoo_gateway_wire.statuses import FINAL_STATUSES, TaskStatus, attempt_of_seq, event_seq


@pytest.mark.parametrize(
    ("code", "reconnect"),
    [
        (None, True),  # the connection dropped without a close frame
        (1000, True),
        (1001, True),
        (1006, True),
        (1009, False),
        (1011, True),
        (1013, True),  # not sent by the gateway: known by its range
        (3003, True),
        (4000, False),
        (4001, False),
        (4002, False),
        (4007, False),
        (4008, True),
        (4029, True),
        (4500, True),
        (4999, True),
        (5000, True),
        (0, True),
    ],
)
def test_every_close_code_has_a_meaning(code: int | None, reconnect: bool) -> None:
    assert should_reconnect(code) is reconnect


def test_reconnect_rules_cover_the_gateways_codes() -> None:
    assert all(lowest <= highest for lowest, highest, _ in RECONNECT_RULES)
    assert [code for code in CloseCode if not code.reconnect] == [
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.AUTH_FAILED,
        CloseCode.AUTH_TIMEOUT,
    ]


def test_retryable_codes() -> None:
    retryable = {code for code in ErrorCode if is_retryable(code)}
    assert retryable == {
        ErrorCode.INTERNAL_ERROR,
        ErrorCode.QUOTA_EXCEEDED,
        ErrorCode.RATE_LIMITED,
        ErrorCode.UNAVAILABLE,
        ErrorCode.BROKER_UNAVAILABLE,
        ErrorCode.STORE_UNAVAILABLE,
    }
    assert is_retryable("odoo_unavailable")  # the family, even when this version does not know the code
    assert is_retryable("validation_failed", retry_after=2)  # the gateway says "try again"
    assert not is_retryable("idempotency_key_reused")


def test_fingerprint_ignores_key_order_and_nothing_else() -> None:
    a = fingerprint("stock.count", {"product": "P1", "quantity": 3})
    assert a == fingerprint("stock.count", {"quantity": 3, "product": "P1"})
    assert a != fingerprint("stock.count", {"product": "P1", "quantity": 4})
    assert a != fingerprint("stock.move", {"product": "P1", "quantity": 3})
    assert len(a) == 64


def test_statuses_and_seq_numbering() -> None:
    assert {s for s in TaskStatus if s.final} == set(FINAL_STATUSES) == {TaskStatus.SUCCEEDED, TaskStatus.FAILED}
    assert set(STATUS_CODES) == {s.value for s in TaskStatus}  # the compact form names every status
    for attempt in range(1, 5):
        for status in (TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRYING, TaskStatus.SUCCEEDED):
            assert attempt_of_seq(event_seq(attempt, status)) == attempt
    assert event_seq(3, TaskStatus.ACCEPTED) == 0


def test_client_frames_round_trip_through_the_compact_form() -> None:
    for frame in (
        frames.auth_frame("tok", ref=1),
        frames.submit_frame("k-1", "stock.count", {"product": "P1"}, ref="s1"),
        frames.resume_frame({"t-1": 3}, ref="r1"),
        frames.ping_frame(),
    ):
        compact = json.loads(frames.encode_client_frame(frame, compact=True))
        assert len(json.dumps(compact)) < len(json.dumps(frame))
        assert client_frame_from_compact(compact) == {k: v for k, v in frame.items() if v is not None}


def test_server_frames_round_trip_through_the_compact_form() -> None:
    task_id = "6f1c2e0a-5b7d-4c8e-9f10-1a2b3c4d5e6f"
    accepted = frames.accepted_frame("s1", task_id, False, TaskStatus.ACCEPTED)
    assert server_frame_from_compact(json.loads(frames.encode_frame(accepted, compact=True))) == accepted
    fields = frames.event_fields(6, TaskStatus.RUNNING, 2, None, None, 1.5)
    event = frames.event_frame(task_id, fields)
    back = server_frame_from_compact(json.loads(frames.encode_frame(event, compact=True)))
    assert back == {k: v for k, v in event.items() if k != "at"}  # `at` is read over HTTP in compact
    assert short_task_id(task_id) in frames.encode_frame(event, compact=True)
    error = frames.error_frame("s2", ErrorCode.RATE_LIMITED, "slow down", retry_after=3)
    assert server_frame_from_compact(json.loads(frames.encode_frame(error, compact=True))) == error
