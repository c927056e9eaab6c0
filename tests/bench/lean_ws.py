"""A lean WebSocket client for benchmarks that hold thousands of sockets in one process:
asyncio streams, a hand-built handshake, masked text frames out, frames in. No library
buffers or keepalive tasks per socket, so the client side costs little CPU and memory.

A socket connected with ``stamped=True`` also tells when its last bytes reached it
(:attr:`LeanWebSocket.received_at`): the kernel's receive timestamp (``SO_TIMESTAMPNS``),
so a frame's arrival is not skewed by the order in which one process gets round to
reading a thousand sockets."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct

from tests.support.stack import TOKENS

__all__ = ["LeanWebSocket"]

# Linux's socket option and control message for receive timestamps (struct timespec).
_SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
_TIMESPEC = struct.Struct("@qq")
_ANCILLARY_BYTES = socket.CMSG_SPACE(_TIMESPEC.size)


class _StampedSocket(socket.socket):
    """A socket whose ``recv`` (what asyncio's transport calls) keeps the kernel's receive
    timestamp of the bytes it returns."""

    received_at = 0.0

    def recv(self, size: int, flags: int = 0) -> bytes:
        data, ancillary, _, _ = self.recvmsg(size, _ANCILLARY_BYTES, flags)
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == _SO_TIMESTAMPNS:
                seconds, nanoseconds = _TIMESPEC.unpack(value)
                self.received_at = seconds + nanoseconds / 1e9
        return data


class LeanWebSocket:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, stamped: _StampedSocket | None = None
    ) -> None:
        self.reader, self.writer = reader, writer
        self._stamped = stamped

    @property
    def received_at(self) -> float:
        """When the kernel received the last bytes read from this socket (``time.time()``'s
        clock; only if connected with ``stamped=True``). Read right after a frame: that
        frame's arrival, or a later one if more bytes came in the same read (an
        overestimate, never an underestimate)."""
        if self._stamped is None:
            raise RuntimeError("connect with stamped=True to have receive timestamps")
        return self._stamped.received_at

    @classmethod
    async def connect(
        cls, host: str, port: int, token: str = TOKENS["demo"], *, stamped: bool = False
    ) -> LeanWebSocket:
        """Open ``/v1/ws`` authenticated by header; raises ConnectionError unless 101.
        ``stamped``: keep receive timestamps (:attr:`received_at`), for about 1 µs more per
        read (``recvmsg`` and its control message instead of ``recv``)."""
        sock = None
        if not stamped:
            reader, writer = await asyncio.open_connection(host, port)
        else:
            loop = asyncio.get_running_loop()
            sock = _StampedSocket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, _SO_TIMESTAMPNS, 1)
                await loop.sock_connect(sock, (host, port))
                reader, writer = await asyncio.open_connection(sock=sock)
            except BaseException:
                sock.close()
                raise
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
        return cls(reader, writer, sock)

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
