"""The async client: :class:`GatewayClient`.

``submit`` writes to the durable outbox and returns at once; one background task keeps a
WebSocket open (reconnecting with capped, fully jittered exponential backoff), falls back to
HTTP polling when sockets cannot be opened, and stops for good only on close codes that say
"do not reconnect" (a refused token), which every waiting handle then raises.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import uuid
from types import TracebackType
from typing import Any, Literal

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.typing import Subprotocol

from odoo_gateway_client.backoff import Backoff
from odoo_gateway_client.errors import (
    AuthenticationError,
    ClientClosed,
    ConnectionRefused,
    GatewayClientError,
    SubmissionRejected,
)
from odoo_gateway_client.handle import TaskHandle
from odoo_gateway_client.http_transport import HttpPoller, fetch_final
from odoo_gateway_client.ledger import Ledger
from odoo_gateway_client.outbox import Outbox, OutboxEntry
from odoo_gateway_client.ws_transport import WsSession
from odoo_gateway_wire.close_codes import CloseCode, should_reconnect
from odoo_gateway_wire.compact import COMPACT_SUBPROTOCOL
from odoo_gateway_wire.frames import encode_client_frame, submit_frame
from odoo_gateway_wire.limits import IDEMPOTENCY_KEY_PATTERN

__all__ = ["GatewayClient"]

log = logging.getLogger(__name__)

# What "the socket could not be opened" looks like: refused/unreachable (OSError), no answer in
# open_timeout, an HTTP answer instead of an upgrade, or the peer hanging up mid-handshake.
_HANDSHAKE_ERRORS = (OSError, TimeoutError, InvalidHandshake, ConnectionClosed, EOFError)
# A connection that lived this long counts as healthy even if it carried no frame.
_STABLE_AFTER = 10.0


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class GatewayClient:
    """Submit tasks to the gateway and follow them, across reconnects and restarts.

    ``outbox_path`` is the SQLite file that makes submissions durable; reuse it after a
    restart to resend what was never acknowledged and resume what was not seen to end.
    The client needs no principal: the token determines it on the gateway.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        outbox_path: str | os.PathLike[str],
        *,
        ws_url: str | None = None,
        prefer_http: bool = False,
        backoff_base: float = 0.5,
        backoff_cap: float = 20.0,
        ws_failures_before_http: int = 3,
        ws_retry_interval: float = 60.0,
        poll_interval: float = 1.0,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        http_timeout: float = 10.0,
        max_in_flight: int = 100,
        max_frame_bytes: int = 65536,
        compact: bool = True,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the gateway URL must start with http:// or https://, not {base_url!r}")
        if not token:
            raise ValueError("a bearer token is required")
        self.base_url = base_url.rstrip("/")
        self.ws_url = ws_url or "ws" + self.base_url.removeprefix("http") + "/v1/ws"
        if not self.ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"the WebSocket URL must start with ws:// or wss://, not {self.ws_url!r}")
        self._token = token
        self._prefer_http = prefer_http
        self._ws_failures_before_http = max(1, ws_failures_before_http)
        self._ws_retry_interval = ws_retry_interval
        self._poll_interval = poll_interval
        self._open_timeout = open_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._http_timeout = http_timeout
        self._max_in_flight = max_in_flight
        self._max_frame_bytes = max_frame_bytes
        # Offer the compact wire form (fewer bytes per task on a slow link); a gateway that
        # does not know it answers in v1, which the session reads too.
        self._subprotocols = [Subprotocol(COMPACT_SUBPROTOCOL)] if compact else None
        self._backoff = Backoff(backoff_base, backoff_cap)
        self._kick = asyncio.Event()
        self._connected = asyncio.Event()
        self.outbox = Outbox(outbox_path)
        self._ledger = Ledger(self.outbox, self._kick.set, self._ensure_started)
        self._runner: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._closed = False
        self.transport: Literal["ws", "http"] | None = None
        self.last_error: str | None = None
        self.connections = 0  # sockets opened so far (tests and tools read it)

    # -- lifecycle -------------------------------------------------------------------------

    def _http_client(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.base_url,
                headers={"Authorization": f"Bearer {self._token}"},
                timeout=self._http_timeout,
            )
        return self._http

    def _ensure_started(self) -> None:
        if self._runner is None and not self._closed:
            self._http_client()
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="gateway-client")

    async def start(self) -> None:
        """Start connecting (idempotent). ``submit``, ``async with`` and waiting on a handle
        start the client too."""
        self._ledger.raise_if_stopped()
        self._ensure_started()

    async def close(self) -> None:
        """Stop the background work. Unacknowledged submissions stay in the outbox."""
        if self._closed:
            return
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.wait({self._runner})
        if self._http is not None:
            await self._http.aclose()
        self._ledger.stop(ClientClosed())
        await asyncio.to_thread(self.outbox.close)

    async def __aenter__(self) -> GatewayClient:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    # -- the application's side ------------------------------------------------------------

    async def submit(self, kind: str, payload: dict[str, Any], *, idempotency_key: str | None = None) -> TaskHandle:
        """Record the submission durably, then return its handle at once; sending happens in the
        background. ``idempotency_key`` defaults to a new UUID; pass your own to make a retried
        call of yours land on the same submission."""
        self._ledger.raise_if_stopped()
        if not isinstance(kind, str) or not kind:
            raise ValueError("kind must be a non-empty string")
        if not isinstance(payload, dict):
            raise TypeError("payload must be a dict (a JSON object)")
        key = idempotency_key or str(uuid.uuid4())
        if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise ValueError("idempotency_key must be 1 to 255 printable ASCII characters without spaces or '\"'")
        # Sized in v1, the longer form: a frame under the limit there is under it in both.
        size = len(encode_client_frame(submit_frame(key, kind, payload, "s0000000")))
        if size > self._max_frame_bytes:
            # Checked before it enters the outbox: the gateway would close the socket (1009) on
            # every resend, so such a row would block the outbox forever.
            raise SubmissionRejected(
                "payload_too_large",
                f"The submission is {size} bytes; the gateway takes at most {self._max_frame_bytes}.",
                key=key,
            )
        handle = await self._ledger.add(key, kind, payload)
        self._ensure_started()
        return handle

    def handle_for(self, task_id: str) -> TaskHandle:
        """A handle for a task by id: the outbox's own if it has one, else a new watched row
        (its events are then replayed from the start)."""
        self._ledger.raise_if_stopped()
        return self._ledger.watch(task_id)

    def pending(self) -> list[TaskHandle]:
        """Every submission or task in the outbox whose ending the application has not seen:
        after a restart, this is how to reattach to them."""
        return self._ledger.handles()

    def entries(self) -> list[OutboxEntry]:
        """The outbox rows as stored (a snapshot)."""
        return self.outbox.entries()

    async def withdraw(self, handle: TaskHandle) -> bool:
        """Drop a submission provably never sent to a gateway (created by this process, never
        written to a socket it kept). True if it was dropped; False if it may have been sent."""
        return await self._ledger.withdraw(handle)

    async def forget(self, handle: TaskHandle) -> None:
        """Stop following ``handle`` and remove its row, whatever its state. An unacknowledged
        submission may still have reached the gateway; it is simply no longer resent."""
        await self._ledger.surface(handle)

    async def poll_once(self) -> None:
        """One HTTP round without starting the background task: POST every unacknowledged
        submission, fetch new events of every unsettled task. For one-shot tools (``gwctl
        outbox --send``). Raises ``httpx.TransportError`` if unreachable, AuthenticationError."""
        self._ledger.raise_if_stopped()
        poller = HttpPoller(self._http_client(), self._ledger, self._kick, self._connected)
        await poller.round()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def stopped_error(self) -> GatewayClientError | None:
        """Why the client stopped for good (a refused token, ...), if it did."""
        return self._ledger.stopped

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Until a socket is open (or an HTTP poll went through). Raises TimeoutError, or the
        error that stopped the client."""
        self._ensure_started()
        async with asyncio.timeout(timeout):
            while not self._connected.is_set():
                self._ledger.raise_if_stopped()
                try:
                    # Short slices: a stop (refused token) must end the wait at once too.
                    async with asyncio.timeout(0.1):
                        await self._connected.wait()
                except TimeoutError:
                    pass
        self._ledger.raise_if_stopped()

    # -- the background task ---------------------------------------------------------------

    async def _run(self) -> None:
        try:
            while True:
                try:
                    await self._connect_loop()
                except GatewayClientError:
                    raise
                except Exception as exc:
                    # Whatever else went wrong (a gateway answering nonsense, a full disk), the
                    # outbox is intact: log it, back off, and start over rather than go silent.
                    self.last_error = f"unexpected error: {_describe(exc)}"
                    log.exception("gateway client: unexpected error; retrying")
                    await asyncio.sleep(self._backoff.next_delay())
        except GatewayClientError as exc:
            self.last_error = str(exc)
            log.error("gateway client stopped: %s", exc)
            self._ledger.stop(exc)
        finally:
            self._connected.clear()
            self.transport = None

    async def _connect_loop(self) -> None:
        failures = 0
        while True:
            if self._prefer_http or failures >= self._ws_failures_before_http:
                await self._poll_http()
                # Give WebSockets one more try after a while, then back to polling if it fails.
                failures = self._ws_failures_before_http - 1
                continue
            try:
                ws = await connect(
                    self.ws_url,
                    additional_headers={"Authorization": f"Bearer {self._token}"},
                    subprotocols=self._subprotocols,
                    open_timeout=self._open_timeout,
                    ping_interval=self._ping_interval,
                    ping_timeout=self._ping_timeout,
                    close_timeout=2.0,
                    max_size=None,
                )
            except _HANDSHAKE_ERRORS as exc:
                failures += 1
                self.last_error = f"cannot open {self.ws_url}: {_describe(exc)}"
                log.info("%s (attempt %d)", self.last_error, failures)
                await asyncio.sleep(self._backoff.next_delay())
                continue
            failures = 0
            await self._ws_session(ws)
            await asyncio.sleep(self._backoff.next_delay())

    async def _ws_session(self, ws: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        opened = loop.time()
        http = self._http_client()
        session = WsSession(ws, self._ledger, self._kick, lambda t: fetch_final(http, t), self._max_in_flight)
        self.transport = "ws"
        self.connections += 1
        self._connected.set()
        log.info("connected to %s", self.ws_url)
        try:
            await session.run()
        except ConnectionClosed as exc:
            self._on_closed(exc, session)
        finally:
            self._connected.clear()
            self.transport = None
            await ws.close()
        if session.frames_received or loop.time() - opened > _STABLE_AFTER:
            # Reset only after the link proved itself: a gateway that accepts and at once
            # closes (overload, 1013) must still see this client back off.
            self._backoff.reset()

    def _on_closed(self, exc: ConnectionClosed, session: WsSession) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else None
        reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
        self.last_error = f"connection closed ({code if code is not None else 'no close frame'}): {reason}"
        if code is None or should_reconnect(code):  # the wire's rule, by range: any code has a meaning
            log.info("%s; reconnecting", self.last_error)
            return
        if code in (CloseCode.AUTH_FAILED, CloseCode.AUTH_TIMEOUT):
            # The gateway authenticates before reading any frame, so nothing written to this
            # connection was processed: those submissions provably never arrived.
            for handle in session.sent:
                handle.sends -= 1
            raise AuthenticationError(f"the gateway refused the token ({code} {reason})")
        raise ConnectionRefused(code, reason)

    async def _poll_http(self) -> None:
        poller = HttpPoller(
            self._http_client(),
            self._ledger,
            self._kick,
            self._connected,
            poll_interval=self._poll_interval,
            backoff=Backoff(self._backoff.base, self._backoff.cap),
        )
        self.transport = "http"
        until = None if self._prefer_http else asyncio.get_running_loop().time() + self._ws_retry_interval
        try:
            await poller.run(until)
        finally:
            if poller.last_error:
                self.last_error = poller.last_error
            self._connected.clear()
            self.transport = None
