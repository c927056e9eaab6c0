"""A pushed frame's bytes are built once and are exactly what websockets would send;
the direct send writes them as they are, and falls back where they would be wrong."""

from __future__ import annotations

from typing import Any

import pytest
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side, State
from websockets.server import ServerProtocol

from gateway.encoded import EncodedFrame
from gateway.lean_sync import LeanEvent
from gateway.transport import AbortableWebSocketProtocol


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_the_wire_bytes_are_a_final_unmasked_text_frame(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)
    frame = EncodedFrame(text)
    assert frame.wire == Frame(Opcode.TEXT, text.encode()).serialize(mask=False, extensions=[])
    assert frame.wire is frame.wire  # built once
    client = Protocol(Side.CLIENT, state=State.OPEN, max_size=None)
    client.receive_data(frame.wire)
    [received] = client.events_received()
    assert received.opcode is Opcode.TEXT and received.fin and received.data.decode() == text


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)


def _protocol() -> Any:
    """The direct send's state, without uvicorn's server around it."""
    protocol: Any = AbortableWebSocketProtocol.__new__(AbortableWebSocketProtocol)
    protocol.disconnected = protocol.close_sent = False
    protocol.handshake_complete = True
    protocol.initial_response = None
    protocol.writable = LeanEvent()
    protocol.writable.set()
    protocol.conn = ServerProtocol()
    protocol.conn.state = State.OPEN
    protocol.transport = _Transport()
    return protocol


def test_the_direct_send_writes_the_shared_bytes() -> None:
    protocol, frame = _protocol(), EncodedFrame('{"type":"event"}')
    assert protocol.send_text_now(frame)
    assert protocol.transport.written == [frame.wire]
    assert protocol.transport.written[0] is frame.wire


def test_bytes_the_protocol_holds_go_out_first() -> None:
    protocol, frame = _protocol(), EncodedFrame('{"type":"event"}')
    protocol.conn.send_ping(b"p")  # queued in the protocol, not yet written
    assert protocol.send_text_now(frame)
    [written] = protocol.transport.written
    ping = Frame(Opcode.PING, b"p").serialize(mask=False)
    assert written == ping + frame.wire


@pytest.mark.parametrize("state", [State.CLOSING, State.CLOSED])
def test_no_direct_send_once_the_connection_closes(state: State) -> None:
    protocol = _protocol()
    protocol.conn.state = state
    assert not protocol.send_text_now(EncodedFrame("{}"))
    assert protocol.transport.written == []


def test_no_direct_send_while_the_transport_is_paused() -> None:
    protocol = _protocol()
    protocol.writable.clear()
    assert not protocol.send_text_now(EncodedFrame("{}"))
    assert protocol.transport.written == []


def test_held_frames_leave_in_one_write() -> None:
    protocol, one, two = _protocol(), EncodedFrame('{"type":"resumed"}'), EncodedFrame('{"type":"event"}')
    assert protocol.send_text_now(one, two)
    assert protocol.transport.written == [one.wire + two.wire]
