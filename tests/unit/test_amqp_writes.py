"""Frames written in one loop turn reach the transport in one write, in order; close and
write_eof hand over what is pending first."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.amqp_writes import CoalescingStreamWriter


class RecordingTransport(asyncio.WriteTransport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.eof = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def _writer(loop: asyncio.AbstractEventLoop) -> tuple[CoalescingStreamWriter, RecordingTransport]:
    transport = RecordingTransport()
    reader = asyncio.StreamReader(loop=loop)
    protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
    return CoalescingStreamWriter(transport, protocol, reader, loop), transport


def test_writes_of_one_turn_leave_in_one_write_in_order() -> None:
    async def run() -> list[bytes]:
        writer, transport = _writer(asyncio.get_running_loop())
        writer.write(b"a")
        writer.writelines([b"b", bytearray(b"c")])
        assert transport.writes == []  # not before the turn ends
        await asyncio.sleep(0)
        writer.write(b"d")
        await asyncio.sleep(0)
        return transport.writes

    assert asyncio.run(run()) == [b"abc", b"d"]


def test_close_and_write_eof_hand_over_what_is_pending() -> None:
    async def run() -> RecordingTransport:
        writer, transport = _writer(asyncio.get_running_loop())
        writer.write(b"close-frame")
        writer.write_eof()
        assert transport.writes == [b"close-frame"] and transport.eof
        writer.write(b"last")
        writer.close()
        await asyncio.sleep(0)  # the flush scheduled by the write finds nothing left
        return transport

    transport = asyncio.run(run())
    assert transport.writes == [b"close-frame", b"last"] and transport.closed
