"""What uvicorn's protocols lack for hostile peers, added where the bytes arrive.

- :class:`GuardedHttpProtocol`: httptools does not bound a request head at all (four
  unfinished 50 MB headers took the gateway from 53 to 246 MiB) and uvicorn only times out
  idle keep-alive connections, not a head sent a byte at a time. The guard answers a head
  over ``max_header_bytes`` with 431 and one not complete ``header_timeout`` seconds after
  the connection opened (or after the next request on it began) with 408, then closes.
  Each request's cycle also writes through :class:`OneWriteAnswers`: uvicorn writes a
  response's head and its body with a call each, and on loopback a ``send`` is ~7 % of
  the gateway's CPU per accepted task; joined, an answer costs one.
- :class:`AbortableWebSocketProtocol`: ``transport.close()`` waits for the send buffer to
  drain, which never happens if the peer stopped reading. The session needs to drop such
  a connection at once, so the protocol hands it ``transport.abort`` in the ASGI scope's
  extensions under :data:`ABORT_EXTENSION`. It also hands over a synchronous
  ``send_text_now`` (:data:`SEND_NOW_EXTENSION`) so a pushed frame costs one call, not a
  task and an await, while the socket keeps up.
"""

from __future__ import annotations

import asyncio
import functools
import json
import socket
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.exceptions import InvalidState
from websockets.http11 import Request

from gateway.lean_sync import LeanEvent, LeanQueue
from gateway.security_headers import SECURITY_HEADERS
from odoo_gateway_wire.close_codes import CloseCode
from shared.config import Settings

__all__ = [
    "ABORT_EXTENSION",
    "SEND_NOW_EXTENSION",
    "AbortableWebSocketProtocol",
    "GuardedHttpProtocol",
    "OneWriteAnswers",
]

ABORT_EXTENSION = "gateway.abort"
SEND_NOW_EXTENSION = "gateway.send_text_now"
_REASONS = {400: b"Bad Request", 408: b"Request Timeout", 431: b"Request Header Fields Too Large"}
_CODES = {400: "invalid_request", 408: "request_timeout", 431: "headers_too_large"}
_SECURITY_HEADERS = b"".join(b"%s: %s\r\n" % (k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items())


class GuardedHttpProtocol(HttpToolsProtocol):
    """httptools with a bounded request head (``GATEWAY_MAX_HEADER_BYTES``,
    ``GATEWAY_HEADER_TIMEOUT``). Named by import string, so uvicorn's worker processes
    (``GATEWAY_WORKERS``) can load it; each reads the settings once."""

    _head_bytes = 0
    _in_head = True
    _head_tail = b""  # the last bytes of the previous chunk: a head's end may straddle two
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        settings = _settings()
        self.max_header_bytes = settings.max_header_bytes
        self.header_timeout = settings.header_timeout
        super().connection_made(transport)  # type: ignore[arg-type]
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head and self.max_header_bytes:
            # Only the head counts: body bytes that arrive in the same read are not head.
            end = (self._head_tail + data).find(b"\r\n\r\n")
            self._head_bytes += len(data) if end < 0 else max(0, end + 4 - len(self._head_tail))
            self._head_tail = data[-3:]
            if self._head_bytes > self.max_header_bytes:
                self._refuse(431, f"The request head is larger than {self.max_header_bytes} bytes.")
                return
        super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._in_head:  # the next request on a kept-alive connection
            self._start_head()

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._head_bytes = 0
        self._head_tail = b""
        self._stop_head_timer()
        previous = self.cycle
        super().on_headers_complete()
        if self.cycle is not None and self.cycle is not previous:  # None: a WebSocket upgrade
            self.cycle.transport = OneWriteAnswers(self.transport, self.loop)  # type: ignore[assignment]

    def _start_head(self) -> None:
        self._in_head = True
        if self.header_timeout and self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._in_head:
            self._refuse(408, f"The request head was not complete within {self.header_timeout:g} s.")

    def send_400_response(self, msg: str) -> None:
        """What the parser could not read gets the API's JSON error shape too, not text/plain."""
        self._refuse(400, f"{msg} Send a well-formed HTTP/1.1 request.")

    def _refuse(self, status: int, message: str) -> None:
        self._in_head = False
        self._stop_head_timer()
        if self.transport.is_closing():
            return
        self.logger.warning("http refused peer=%s status=%d (%s)", _peer(self.client), status, message)
        body = json.dumps({"error": {"code": _CODES[status], "message": message, "details": None}}).encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%sconnection: close\r\n\r\n%s"
            % (status, _REASONS[status], len(body), _SECURITY_HEADERS, body)
        )
        self.transport.close()


class OneWriteAnswers:
    """The transport as one request's cycle sees it: what the cycle writes in one turn of
    the loop (a response's head and its body) goes to the socket in one write at the start
    of the next turn, in the order written. ``close`` sends what is pending first. The
    cycle uses only ``write``, ``close`` and ``is_closing``; the protocol itself, and a
    WebSocket it upgrades to, keep the real transport."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = []
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class AbortableWebSocketProtocol(WebSocketsSansIOProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ~4 KiB less per socket than asyncio's Queue and Event (see lean_sync.py).
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        size = _settings().ws_kernel_send_buffer_bytes
        sock = transport.get_extra_info("socket")
        if size and sock is not None:
            # A fixed kernel buffer (no autotuning): what a peer that stops reading makes
            # the kernel hold is bounded, and it is found slow (4008) once that is full.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # the handshake went on to the app (it may still refuse it)
            scope["extensions"][ABORT_EXTENSION] = self.transport.abort
            scope["extensions"][SEND_NOW_EXTENSION] = self.send_text_now

    def send_text_now(self, text: str) -> bool:
        """Write a text frame at once, without a coroutine, if the socket takes it without
        waiting: handshake done, no close sent, and the transport below its high-water mark
        (uvicorn clears ``writable`` above it). False: use the ASGI send, which waits.
        A push to 1,000 sockets is then 1,000 plain calls, not 1,000 tasks and awaits."""
        if (
            self.disconnected
            or not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or not self.writable.is_set()
        ):
            return False
        try:
            self.conn.send_text(text.encode())
        except InvalidState:
            return False
        self.transport.write(b"".join(self.conn.data_to_send()))
        return True

    async def send(self, message: Any) -> None:
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # The handshake is written: nothing reads its request or response again, and
            # an idle socket should not hold them (about 2 KiB each) for its whole life.
            self.request = self.response = None  # type: ignore[assignment]

    def shutdown(self) -> None:
        """uvicorn's server shutdown, for a socket the gateway's own drain (gateway/shutdown.py)
        left open: close it with 1001 GOING_AWAY, the code the README documents, where uvicorn
        would send 1012; the app sees the same code in its ``websocket.disconnect``."""
        if self.close_sent or not self.handshake_complete or self.initial_response is not None:
            super().shutdown()
            return
        self.stop_keepalive()
        self.queue.put_nowait({"type": "websocket.disconnect", "code": int(CloseCode.GOING_AWAY)})
        self.conn.send_close(int(CloseCode.GOING_AWAY), "gateway shutting down; reconnect")
        self.transport.write(b"".join(self.conn.data_to_send()))
        self.transport.close()


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"
