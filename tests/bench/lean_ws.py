"""A lean WebSocket client for benchmarks that hold thousands of sockets in one process:
asyncio streams, a hand-built handshake, masked text frames out, frames in. No library
buffers or keepalive tasks per socket, so the client side costs little CPU and memory."""

from __future__ import annotations

import asyncio
import base64
import os
import struct

from tests.support.stack import TOKENS

__all__ = ["LeanWebSocket"]


class LeanWebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, host: str, port: int, token: str = TOKENS["demo"]) -> LeanWebSocket:
        """Open ``/v1/ws`` authenticated by header; raises ConnectionError unless 101."""
        reader, writer = await asyncio.open_connection(host, port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /v1/ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 101"):
            writer.transport.abort()
            raise ConnectionError(head.split(b"\r\n", 1)[0].decode())
        return cls(reader, writer)

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        size = len(payload)
        header = bytes([0x81, 0x80 | size]) if size < 126 else bytes([0x81, 0x80 | 126]) + struct.pack("!H", size)
        self.writer.write(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    async def read_frame(self) -> tuple[int, bytes]:
        """The next frame as (opcode, payload); a close frame raises ConnectionError with its code."""
        first, second = await self.reader.readexactly(2)
        size = second & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        opcode, payload = first & 0x0F, await self.reader.readexactly(size)
        if opcode == 0x8:
            raise ConnectionError(f"closed {struct.unpack('!H', payload[:2])[0] if payload else ''}")
        return opcode, payload

    async def read_until(self, marker: bytes) -> bytes:
        """Read text frames until one contains ``marker``; returns it."""
        while True:
            opcode, payload = await self.read_frame()
            if opcode == 0x1 and marker in payload:
                return payload

    def abort(self) -> None:
        self.writer.transport.abort()
