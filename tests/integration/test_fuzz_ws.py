"""Hypothesis-generated WebSocket frames: random JSON, wrong types, huge strings, deep
nesting, binary frames, invalid UTF-8. The gateway never crashes, answers each with the
documented error frame or close code, and stays usable for other clients."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odoo_gateway_wire.compact import COMPACT_SUBPROTOCOL
from tests.support.stack import TOKENS, Stack

HEADERS = {"Authorization": f"Bearer {TOKENS['demo']}"}
LIMIT = 65536  # GATEWAY_WS_MAX_FRAME_BYTES default

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=25,
)
protocol_shaped = st.fixed_dictionaries(
    {"type": st.sampled_from(["submit", "resume", "ping", "auth", "accepted", "", "PING"])},
    optional={
        "ref": json_values,
        "idempotency_key": json_values,
        "kind": st.sampled_from(["inventory.adjust", "sale.order.create"]) | json_values,
        "payload": json_values,
        "tasks": json_values | st.dictionaries(st.text(max_size=40), st.integers(), max_size=5),
        "token": json_values,
    },
)
# (what to send, whether it is text) — each case says what the gateway must do with it.
frames = st.one_of(
    json_values.map(lambda v: ("ok", json.dumps(v))),
    protocol_shaped.map(lambda v: ("ok", json.dumps(v))),
    st.text(max_size=300).map(lambda t: ("ok", t)),
    st.integers(10, 30_000).map(lambda d: ("ok", "[" * d + "]" * d)),
    st.integers(10, 10_000).map(lambda d: ("ok", '{"a":' * d + "1" + "}" * d)),  # < the frame limit
    st.integers(LIMIT + 1, 4 * LIMIT).map(lambda n: ("too_big", '{"type":"ping","ref":"' + "x" * n + '"}')),
    st.binary(max_size=300).map(lambda b: ("binary", b)),
    st.binary(min_size=1, max_size=50).map(lambda b: ("bad_utf8", b"\xff\xfe" + b)),
)


async def exchange(url: str, kind: str, frame: Any, compact: bool = False) -> tuple[str, Any]:
    """Send one frame; the reply (or the close code), after checking the socket still
    answers a ping in its form (v1, or compact over ``gateway.v1c``)."""
    subprotocols = [COMPACT_SUBPROTOCOL] if compact else None
    type_key, event, ping, pong = (
        ("t", "e", {"t": "p", "r": "after"}, {"t": "p", "r": "after"})
        if compact
        else (
            "type",
            "event",
            {"type": "ping", "ref": "after"},
            {"type": "pong", "ref": "after"},
        )
    )
    async with websockets.connect(url, additional_headers=HEADERS, subprotocols=subprotocols, max_size=None) as ws:
        assert ws.subprotocol == (COMPACT_SUBPROTOCOL if compact else None)
        if kind == "bad_utf8":
            await ws.send(frame, text=True)
        else:
            await ws.send(frame)
        try:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except websockets.ConnectionClosed as closed:
            assert closed.rcvd is not None
            return "closed", closed.rcvd.code
        # The socket is still usable after whatever it was sent.
        await ws.send(json.dumps(ping))
        while (answer := json.loads(await asyncio.wait_for(ws.recv(), 10)))[type_key] == event:
            pass
        assert answer == pong
        return "reply", reply


async def canary(url: str) -> None:
    async with websockets.connect(url, additional_headers=HEADERS) as ws:
        await ws.send('{"type":"ping","ref":"canary"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "pong", "ref": "canary"}


def test_generated_frames_get_documented_answers(sqlite_stack: Stack) -> None:
    url = sqlite_stack.ws
    seen: dict[str, int] = {}

    @given(case=frames)
    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    def one(case: tuple[str, Any]) -> None:
        kind, frame = case
        outcome, value = asyncio.run(exchange(url, kind, frame))
        seen[kind] = seen.get(kind, 0) + 1
        if kind == "too_big":
            assert (outcome, value) == ("closed", 1009)
        elif kind == "bad_utf8":
            assert (outcome, value) == ("closed", 1007)
        elif kind == "binary":
            assert outcome == "reply" and value["type"] == "error" and value["code"] == "invalid_request"
        else:
            assert outcome == "reply", value
            assert value["type"] in ("error", "pong", "resumed", "accepted"), value
            if value["type"] == "error":
                assert value["code"] in (
                    "invalid_request",
                    "unknown_type",
                    "validation_failed",
                    "idempotency_key_reused",
                )
                assert isinstance(value["message"], str) and value["message"]
        asyncio.run(canary(url))

    one()
    assert seen.get("ok", 0) > 50 and seen.get("too_big", 0) and seen.get("binary", 0) and seen.get("bad_utf8", 0)
    assert httpx.get(f"{sqlite_stack.base}/healthz", timeout=5).status_code == 200
    assert sqlite_stack.gateways[0][0].alive()


# The compact form (subprotocol gateway.v1c) has its own decoder: the same promise holds.
compact_shaped = st.fixed_dictionaries(
    {"t": st.sampled_from(["s", "r", "p", "a", "k", "e", "x", "", "S"]) | json_values},
    optional={
        "r": json_values,
        "k": json_values,
        "n": st.sampled_from(["inventory.adjust", "sale.order.create"]) | json_values,
        "p": json_values,
        "ts": json_values | st.dictionaries(st.text(max_size=40), st.integers(), max_size=5),
        "tk": json_values,
        "type": json_values,
    },
)
compact_frames = st.one_of(
    json_values.map(lambda v: ("ok", json.dumps(v))),
    compact_shaped.map(lambda v: ("ok", json.dumps(v))),
    st.text(max_size=300).map(lambda t: ("ok", t)),
    st.integers(10, 10_000).map(lambda d: ("ok", '{"t":' * d + "1" + "}" * d)),
    st.binary(max_size=300).map(lambda b: ("binary", b)),
)


def test_generated_compact_frames_get_documented_answers(sqlite_stack: Stack) -> None:
    url = sqlite_stack.ws
    seen: dict[str, int] = {}

    @given(case=compact_frames)
    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
    def one(case: tuple[str, Any]) -> None:
        kind, frame = case
        outcome, value = asyncio.run(exchange(url, kind, frame, compact=True))
        seen[kind] = seen.get(kind, 0) + 1
        assert outcome == "reply", value
        # x error, p pong, r resumed, k accepted (a valid generated submission or resume)
        assert value["t"] in ("x", "p", "r", "k"), value
        if kind == "binary":
            assert value["t"] == "x" and value["c"] == "invalid_request"
        if value["t"] == "x":
            assert value["c"] in ("invalid_request", "unknown_type", "validation_failed", "idempotency_key_reused")
            assert isinstance(value["m"], str) and value["m"]
        asyncio.run(canary(url))

    one()
    assert seen.get("ok", 0) > 50 and seen.get("binary", 0)
    assert sqlite_stack.gateways[0][0].alive()
