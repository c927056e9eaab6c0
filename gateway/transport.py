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
  task and an await, while the socket keeps up: one write of bytes built once for every
  socket that gets the frame.

The upgrade, cheaper (a reconnect storm is thousands of handshakes a second on one core):
uvicorn writes the request httptools has parsed back out as bytes for ``websockets`` to
parse again, asks the socket for both addresses again, and builds the 101 answer as a
header object to serialise. Here a handshake that is plainly valid (:func:`handshake_key`)
goes to the WebSocket protocol as it was parsed, with the addresses the HTTP protocol has,
and is answered with bytes; anything else takes uvicorn's way, and ``websockets`` answers
it as before (400, 426, 431, ...). Both protocols take the addresses the event loop
already knows (``sockname``, ``peername``) instead of making a socket object and two
system calls each.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import functools
import hashlib
import json
import re
import socket
from typing import Any
from urllib.parse import unquote

from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import ClientDisconnected, get_local_addr, get_remote_addr, is_ssl
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.http11 import MAX_LINE_LENGTH, MAX_NUM_HEADERS, Request
from websockets.protocol import OPEN, Protocol

from gateway.encoded import EncodedFrame
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
        # uvicorn's connection_made, with the addresses from the event loop (see the top).
        self.connections.add(self)
        self.transport = transport  # type: ignore[assignment]
        self.flow = FlowControl(transport)  # type: ignore[arg-type]
        self.server = local_address(transport)
        self.client = remote_address(transport)
        self.scheme = "https" if is_ssl(transport) else "http"  # type: ignore[arg-type]
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

    def handle_websocket_upgrade(self) -> None:
        """A plainly valid handshake goes to our WebSocket protocol as parsed; anything
        else the long way (uvicorn serialises it and ``websockets`` answers what is wrong)."""
        protocol_class: Any = self.ws_protocol_class
        key = None
        if isinstance(protocol_class, type) and issubclass(protocol_class, AbortableWebSocketProtocol):
            key = handshake_key(self.scope["method"], self.url, self.headers)
        if key is None:
            super().handle_websocket_upgrade()
            return
        self.connections.discard(self)
        protocol: AbortableWebSocketProtocol = protocol_class(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        protocol.upgrade_from(self, key)

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
    # The Sec-WebSocket-Accept of a handshake taken over from the HTTP protocol as parsed
    # (upgrade_from); None for one that came the long way, through ``websockets``.
    _accept_key: bytes | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ~4 KiB less per socket than asyncio's Queue and Event (see lean_sync.py).
        self.queue = LeanQueue()  # type: ignore[assignment]
        self.writable = LeanEvent()  # type: ignore[assignment]
        self.writable.set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """The long way (a handshake :func:`handshake_key` left to ``websockets``)."""
        super().connection_made(transport)
        _fix_send_buffer(transport)

    def upgrade_from(self, http: HttpToolsProtocol, accept_key: bytes) -> None:
        """Take the connection over from ``http``, whose request (a handshake
        :func:`handshake_key` found valid) is parsed: what uvicorn's ``connection_made``,
        ``data_received`` and ``handle_connect`` do with it, without parsing it again."""
        transport = http.transport
        self.connections.add(self)
        self.transport = transport
        self.server, self.client = http.server, http.client
        self.scheme = "wss" if http.scheme == "https" else "ws"
        _fix_send_buffer(transport)
        transport.set_protocol(self)
        # The request is read: what the client sends next are frames (ServerProtocol.parse
        # goes on to this after the request).
        conn = self.conn
        conn.parser = Protocol.parse(conn)
        next(conn.parser)
        self.handshake_initiated = True
        self._accept_key = accept_key
        url: bytes = http.url
        raw_path, _, query_string = url.partition(b"?")
        subprotocols: list[str] = []
        for name, value in http.headers:
            if name == b"sec-websocket-protocol":
                subprotocols.extend(token.strip() for token in value.decode("latin-1").split(","))
        extensions: dict[str, Any] = {
            "websocket.http.response": {},
            ABORT_EXTENSION: transport.abort,
            SEND_NOW_EXTENSION: self.send_text_now,
        }
        self.scope = {
            "type": "websocket",
            "asgi": {"version": self.asgi_version, "spec_version": "2.4"},
            "http_version": "1.1",
            "scheme": self.scheme,
            "server": self.server,
            "client": self.client,
            "root_path": self.root_path,
            "path": self.root_path + unquote(raw_path.decode("ascii")),
            "raw_path": self.root_path.encode("ascii") + raw_path,
            "query_string": query_string,
            "headers": http.headers,
            "subprotocols": subprotocols,
            "state": self.app_state.copy(),
            "extensions": extensions,
        }
        self.queue.put_nowait({"type": "websocket.connect"})
        task = self.loop.create_task(self.run_asgi())
        task.add_done_callback(self.on_task_complete)
        self.tasks.add(task)

    def handle_connect(self, event: Request) -> None:
        super().handle_connect(event)
        scope: Any = getattr(self, "scope", None)
        if scope is not None:  # the handshake went on to the app (it may still refuse it)
            scope["extensions"][ABORT_EXTENSION] = self.transport.abort
            scope["extensions"][SEND_NOW_EXTENSION] = self.send_text_now

    def send_text_now(self, *frames: EncodedFrame) -> bool:
        """Write text frames at once, in one write, without a coroutine, if the socket takes
        them without waiting: handshake done, no close sent or received, and the transport
        below its high-water mark (uvicorn clears ``writable`` above it). False: use the
        ASGI send, which waits. A push to 1,000 sockets is then 1,000 plain calls, not 1,000
        tasks and awaits, each writing the frame's bytes built once for all of them
        (encoded.py)."""
        conn = self.conn
        if (
            self.disconnected
            or not self.handshake_complete
            or self.close_sent
            or self.initial_response is not None
            or not self.writable.is_set()
            # What websockets' send_text would refuse (InvalidState, ProtocolError).
            or conn.state is not OPEN
            or conn.expect_continuation_frame
        ):
            return False
        if conn.extensions or conn.writes:
            # An extension would rewrite a frame; bytes the protocol holds go out first.
            for frame in frames:
                conn.send_text(frame.text.encode())
            self.transport.write(b"".join(conn.data_to_send()))
        elif len(frames) == 1:
            self.transport.write(frames[0].wire)
        else:
            self.transport.write(b"".join([frame.wire for frame in frames]))
        return True

    async def send(self, message: Any) -> None:
        if self._accept_key is not None and message["type"] == "websocket.accept":
            await self._accept(message)
            return
        await super().send(message)
        if self.handshake_complete and getattr(self, "response", None) is not None:
            # The handshake is written: nothing reads its request or response again, and
            # an idle socket should not hold them (about 2 KiB each) for its whole life.
            self.request = self.response = None  # type: ignore[assignment]

    async def _accept(self, message: Any) -> None:
        """uvicorn's answer to ``websocket.accept`` (the same headers in the same order),
        written as bytes for a handshake taken over as parsed."""
        await self.writable.wait()
        if self.disconnected:
            raise ClientDisconnected()
        if self.handshake_complete or self.initial_response is not None:
            raise RuntimeError(f"Unexpected ASGI message {message['type']!r} after the handshake.")
        key, self._accept_key = self._accept_key or b"", None
        head = [_SWITCHING, b"Sec-WebSocket-Accept: ", key, b"\r\n"]
        for name, value in (*self.default_headers, *message.get("headers", ())):
            head += (name.lower(), b": ", value, b"\r\n")
        subprotocol = message.get("subprotocol")
        if subprotocol:
            head += (b"Sec-WebSocket-Protocol: ", subprotocol.encode("latin-1"), b"\r\n")
        head.append(b"\r\n")
        if not self.transport.is_closing():
            self.handshake_complete = True
            self.conn.state = OPEN
            self.transport.write(b"".join(head))
            self.start_keepalive()

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


_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# What websockets' request parser accepts: a header name is a token, a value has no
# control character but tab.
_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_BAD_VALUE = re.compile(rb"[^\x09\x20-\x7e\x80-\xff]")
_HANDSHAKE_HEADERS = frozenset(
    (
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"upgrade",
        b"connection",
        b"origin",
        b"sec-websocket-protocol",
        b"transfer-encoding",
        b"content-length",
    )
)


def handshake_key(method: str, url: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """``Sec-WebSocket-Accept`` for a handshake request that ``websockets`` would accept
    as it is configured here (no extension, no subprotocol of its own, any origin: the
    app checks Origin), from the head httptools parsed (names lowercased, values without
    surrounding whitespace); None for anything else, which then goes to ``websockets``
    to be checked and answered as before. Narrower than it, never wider: a request in
    doubt gets None."""
    if method != "GET" or len(url) + 14 > MAX_LINE_LENGTH or len(headers) > MAX_NUM_HEADERS or not url.isascii():
        return None
    seen: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        if len(name) + len(value) + 4 > MAX_LINE_LENGTH or _BAD_VALUE.search(value) or not _TOKEN.fullmatch(name):
            return None
        if name in _HANDSHAKE_HEADERS:
            seen.setdefault(name, []).append(value)
    key = seen.get(b"sec-websocket-key", [])
    if (
        len(key) != 1
        or seen.get(b"sec-websocket-version") != [b"13"]
        or [value.lower() for value in seen.get(b"upgrade", ())] != [b"websocket"]
        or b"upgrade" not in _tokens(seen.get(b"connection", []))
        or len(seen.get(b"origin", ())) > 1
        or None in _tokens(seen.get(b"sec-websocket-protocol", []))
        or b"transfer-encoding" in seen
        or any(value != b"0" for value in seen.get(b"content-length", ()))
    ):
        return None
    try:
        if len(base64.b64decode(key[0], validate=True)) != 16:
            return None
    except binascii.Error:
        return None
    return base64.b64encode(hashlib.sha1(key[0] + _WS_GUID).digest())


def _tokens(values: list[bytes]) -> set[bytes | None]:
    """The comma-separated tokens of header values, lowercased; None for anything else."""
    tokens: set[bytes | None] = set()
    for value in values:
        for token in value.split(b","):
            token = token.strip(b" \t")
            tokens.add(token.lower() if _TOKEN.fullmatch(token) else None)
    return tokens


def local_address(transport: asyncio.BaseTransport) -> tuple[str, int | None] | None:
    """What uvicorn's ``get_local_addr`` finds, from the address the event loop has."""
    info = transport.get_extra_info("sockname")
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return get_local_addr(transport)  # type: ignore[arg-type]


def remote_address(transport: asyncio.BaseTransport) -> tuple[str, int] | None:
    """What uvicorn's ``get_remote_addr`` finds, from the address the event loop has."""
    info = transport.get_extra_info("peername")
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return get_remote_addr(transport)  # type: ignore[arg-type]


def _fix_send_buffer(transport: asyncio.BaseTransport) -> None:
    size = _settings().ws_kernel_send_buffer_bytes
    sock = transport.get_extra_info("socket") if size else None
    if sock is not None:
        # A fixed kernel buffer (no autotuning): what a peer that stops reading makes
        # the kernel hold is bounded, and it is found slow (4008) once that is full.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)


@functools.cache
def _settings() -> Settings:
    return Settings.from_env()


def _peer(client: tuple[str, int] | None) -> str:
    return f"{client[0]}:{client[1]}" if client else "?"
