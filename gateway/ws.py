"""The WebSocket endpoint ``/v1/ws``: a thin adapter between a socket and the registry.

Per connection: the endpoint's task reads frames (rate-bounded); a sender task, alive only
while frames are queued, drains a byte-bounded queue with a time bound on every send. When
the registry closes a session, both are cancelled and the endpoint ends the connection.
Nothing awaits a slow socket on behalf of others: the relay only puts frames in queues.

A peer that stops reading costs bounded memory and time. A send that does not complete
within ``GATEWAY_WS_SEND_TIMEOUT`` or a queue over ``GATEWAY_WS_SEND_QUEUE_BYTES`` makes the
registry close the session (4008): it leaves the hub and its queue is freed before any
close is attempted; the close frame then gets ``_CLOSE_SEND_SECONDS`` and the connection is
aborted if it is not gone ``_CLOSE_GRACE_SECONDS`` later (``transport.close()`` alone would
wait forever for a send buffer that never drains).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import random
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway import metrics
from gateway.auth import bearer_token
from gateway.encoded import EncodedFrame
from gateway.limits import TokenBucket
from gateway.registry import SessionRegistry
from gateway.state import GatewayState, gateway_state
from gateway.transport import ABORT_EXTENSION, SEND_NOW_EXTENSION
from odoo_gateway_wire.close_codes import CloseCode
from odoo_gateway_wire.compact import COMPACT_SUBPROTOCOL
from odoo_gateway_wire.frames import accepted_frame, authenticated_frame, encode_frame, pong_frame, resumed_frame
from odoo_gateway_wire.limits import MAX_RESUME_TASKS
from odoo_gateway_wire.statuses import TaskStatus
from shared.errors import AuthenticationFailed, GatewayError, InvalidRequest, QuotaExceeded, RateLimited
from shared.events import ErrorInfo, TaskEvent
from shared.protocol import AuthFrame, PingFrame, ResumeFrame, SubmitFrame, error_frame_of, parse_client_frame

__all__ = ["WsSession", "websocket_endpoint"]

log = logging.getLogger(__name__)
_CLOSE_SEND_SECONDS = 1.0
_CLOSE_GRACE_SECONDS = 2.0
# At shutdown, how long a socket's queued frames get to go out before it is closed.
_DRAIN_SEND_SECONDS = 1.0
# Frames refused for going over a rate that a socket may send before it is cut off (4029),
# plus one more per second: a client that honours ``retry_after`` never gets near it.
_REFUSALS_BURST = 10
_SESSION_IDS = itertools.count(random.getrandbits(48))
# Events a resume frame reads with its tasks, before `resumed` is sent (the rest after it).
_RESUME_PREFETCH = 100


class _Close(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WsSession:
    """One authenticated socket. An idle one holds no task of its own beyond the endpoint's
    (the sender exists only while frames are queued), no event objects and no queue (an
    empty deque is a 600-byte block; it exists only while the socket is behind)."""

    __slots__ = (
        "id",
        "ws",
        "state",
        "principal",
        "compact",
        "closing",
        "_queue_limit",
        "_send_timeout",
        "_queue",
        "_send_now",
        "_queued_bytes",
        "_sender",
        "_main",
        "_room",
        "_frames",
        "_resume_ids",
        "_refusals",
        "_draining",
        "_handling",
        "_drainer",
        "_corked",
    )

    def __init__(self, ws: WebSocket, state: GatewayState, principal: str, compact: bool = False) -> None:
        # 12 hex digits, as before: a count from a random start, so unique in this process
        # (the registry's key) without a system call per connection (os.urandom is one,
        # and lets go of the GIL). Only logs show it; nothing trusts it.
        self.id = f"{next(_SESSION_IDS) & 0xFFFFFFFFFFFF:012x}"
        self.ws = ws
        self.state = state
        self.principal = principal
        # The wire form negotiated at the handshake (subprotocol gateway.v1c): every frame
        # this socket gets or sends is in it.
        self.compact = compact
        settings = state.settings
        self._queue_limit = settings.ws_send_queue_bytes
        self._send_timeout = settings.ws_send_timeout or None
        self._queue: deque[EncodedFrame] | None = None
        # Frames go straight to the transport while it takes them (uvicorn's protocol, see
        # transport.py); the queue and the sender task are for a socket that is behind.
        self._send_now: Callable[..., bool] | None = ws.scope.get("extensions", {}).get(SEND_NOW_EXTENSION)
        self._queued_bytes = 0
        self._sender: asyncio.Task[None] | None = None
        self._main: asyncio.Task[Any] | None = None
        self._room: asyncio.Event | None = None  # only while a resume waits for the queue to drain
        self.closing: _Close | None = None
        rate = settings.ws_frames_per_second
        self._frames = TokenBucket(rate, 2 * rate)
        self._resume_ids: TokenBucket | None = None
        self._refusals: TokenBucket | None = None
        # Server shutdown (gateway/shutdown.py): the close to send once the frame being
        # handled is answered and the queue is sent.
        self._draining: _Close | None = None
        self._handling = False
        self._drainer: asyncio.Task[None] | None = None
        # Frames held back to leave in one write (a resume's `resumed` and its events).
        self._corked: list[EncodedFrame] | None = None

    @property
    def registry(self) -> SessionRegistry:
        return self.state.registry

    # -- what the registry calls -------------------------------------------------------

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; never blocks. Over the byte bound, the client is too slow."""
        if self.closing is None:
            self.send_encoded(EncodedFrame(encode_frame(frame, self.compact)))

    def send_encoded(self, frame: EncodedFrame) -> None:
        if self.closing is not None:
            return
        if self._corked is not None:
            self._corked.append(frame)
            return
        if not self._queue and self._send_now is not None and self._send_now(frame):
            return
        if self._queue is None:
            self._queue = deque()
        self._queue.append(frame)
        self._queued_bytes += len(frame)
        if self._queue_limit and self._queued_bytes > self._queue_limit:
            self._close(CloseCode.SLOW_CONSUMER, f"send queue over {self._queue_limit} bytes; resume")
            return
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain(), name=f"ws-send:{self.id}")

    def _uncork(self) -> None:
        """Send the frames held since ``_corked`` was set, in one write if the socket takes them now."""
        frames, self._corked = self._corked, None
        if not frames or self.closing is not None:
            return
        if not self._queue and self._send_now is not None and self._send_now(*frames):
            return
        for frame in frames:
            self.send_encoded(frame)

    def shutdown(self, code: CloseCode, reason: str) -> None:
        """Stop: drop what is queued and stop this socket's tasks (the endpoint then ends
        the connection). Only the registry calls this, after it has detached the session."""
        if self.closing is not None:
            return
        self.closing = _Close(code, reason)
        self._queue = None
        self._queued_bytes = 0
        if self._room is not None:
            self._room.set()
        current = asyncio.current_task()
        for task in (self._sender, self._main):
            if task is not None and task is not current and not task.done():
                task.cancel()

    def drain(self, code: CloseCode, reason: str) -> None:
        """Server shutdown: answer the frame being handled (a submission under way gets
        its ``accepted``), read no new one, send what is queued, then close."""
        if self.closing is not None or self._draining is not None:
            return
        self._draining = _Close(code, reason)
        if not self._handling:
            self._drainer = asyncio.create_task(self._close_when_sent(), name=f"ws-drain:{self.id}")

    async def _close_when_sent(self) -> None:
        draining = self._draining
        if draining is None:
            return
        deadline = time.monotonic() + _DRAIN_SEND_SECONDS
        while self._queue and self.closing is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self.closing is None:
            self._close(draining.code, draining.reason)

    # -- the connection's tasks --------------------------------------------------------

    async def run(self) -> None:
        """Read frames until the peer leaves (WebSocketDisconnect) or the registry closes
        the session (the :class:`_Close` it decided)."""
        self._main = asyncio.current_task()
        try:
            await self._receive_loop()
        except asyncio.CancelledError:
            if self.closing is None or self._main is None:
                raise  # cancelled from outside (server shutdown): not ours to turn
            self._main.uncancel()
            raise self.closing from None
        finally:
            if self._sender is not None and not self._sender.done():
                self._sender.cancel()

    async def _drain(self) -> None:
        while self._queue and self.closing is None:
            frame = self._queue[0]
            try:
                async with asyncio.timeout(self._send_timeout):
                    await self.ws.send_text(frame.text)
            except TimeoutError:
                self._close(CloseCode.SLOW_CONSUMER, f"a send took over {self._send_timeout:g} s; resume")
                return
            except (OSError, RuntimeError):
                return  # the peer is gone: the receive side gets its disconnect
            if self.closing is not None:
                return
            self._queue.popleft()
            if not self._queue:
                self._queue = None
            self._queued_bytes = max(0, self._queued_bytes - len(frame))
            if self._room is not None and self._queued_bytes <= self._queue_limit // 2:
                self._room.set()

    async def _receive_loop(self) -> None:
        limit = self.state.settings.ws_max_frame_bytes
        while True:
            if self.closing is not None:
                raise self.closing
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
            if not self._frames.take():
                wait = self._frames.wait_for()
                rate = self.state.settings.ws_frames_per_second
                self._refuse(None, RateLimited(f"More than {rate:g} frames a second.", retry_after_seconds=_ceil(wait)))
                continue
            text = message.get("text")
            if text is None:
                self.send(error_frame_of(None, InvalidRequest("Binary frames are not supported; send JSON text.")))
                continue
            if len(text) > limit:
                raise self._close(CloseCode.MESSAGE_TOO_BIG, f"frame larger than {limit} bytes")
            if self._draining is not None:
                continue  # shutting down: unanswered, the client sends it again elsewhere
            self._handling = True
            try:
                await self.handle(text)
            finally:
                self._handling = False
            if self._draining is not None:
                await self._close_when_sent()

    # -- frames ------------------------------------------------------------------------

    async def handle(self, text: str) -> None:
        frame = None
        try:
            frame = parse_client_frame(text, self.compact)
            if isinstance(frame, SubmitFrame):
                await self._submit(frame)
            elif isinstance(frame, ResumeFrame):
                await self._resume(frame)
            elif isinstance(frame, PingFrame):
                self.send(pong_frame(frame.ref))
            elif isinstance(frame, AuthFrame):
                raise InvalidRequest("Already authenticated.")
        except _Close:
            raise
        except QuotaExceeded as err:
            self._refuse(err.ref if frame is None else frame.ref, err)
        except GatewayError as err:  # ClientError: fix the frame; Unavailable: retry it later
            self.send(error_frame_of(err.ref if frame is None else frame.ref, err))
        except Exception:  # a bug: the client gets a reference to quote, the log the traceback
            reference = uuid.uuid4().hex[:12]
            log.exception("ws internal error conn=%s reference=%s", self.id, reference)
            internal = GatewayError(f"Internal error (reference {reference}).", details={"reference": reference})
            self.send(error_frame_of(None if frame is None else frame.ref, internal))

    async def _submit(self, frame: SubmitFrame) -> None:
        # Checked before submitting: once accepted, the task must be watched, not refused.
        self.registry.check_watch_room(self.id, 1)
        outcome = await self.state.submissions.submit(
            self.principal, frame.idempotency_key, frame.kind, frame.payload, transport="ws"
        )
        task = outcome.task
        fresh = not self.registry.is_watching(self.id, task.id)
        # Compact form: a task already final (a replayed submission) has its outcome folded
        # into the `accepted`, and nothing of its history follows. Not on a socket that
        # already watches it: it had that event, and no seq goes twice to one socket.
        folded = self.compact and fresh and task.status.final
        after = task.seq if folded else 0
        self.registry.watch(self.id, [(task.id, after)], enforce=False)
        accepted = accepted_frame(frame.ref, task.id, outcome.duplicate, task.status)
        if folded:
            accepted.update(seq=task.seq, result=task.result, error=_error_fields(task.error))
        self.send(accepted)
        if fresh:
            await self.sync(task.id, after)

    async def _resume(self, frame: ResumeFrame) -> None:
        # Paced, not refused: a device back online with many open tasks resumes them all,
        # just no faster than the bound; meanwhile this socket's frames wait unread.
        count = len(frame.tasks)
        if self._resume_ids is None:
            ids = self.state.settings.ws_resume_ids_per_second
            # A full resume frame must always be possible, however low the rate.
            self._resume_ids = TokenBucket(ids, max(2 * ids, MAX_RESUME_TASKS))
        wait = self._resume_ids.wait_for(count)
        if wait:  # not even a loop turn for a resume within the rate (thousands in a storm)
            await asyncio.sleep(wait)
        self._resume_ids.take(count)
        fresh_ids = {t for t in frame.tasks if not self.registry.is_watching(self.id, t)}
        self.registry.check_watch_room(self.id, len(fresh_ids))
        # Gap-free: each fresh task is watched (live events buffered) before its events are
        # read, so an event is in the read or in the buffer. Its events come in the same
        # trip to the store as the task itself, up to _RESUME_PREFETCH for the frame (what a
        # resume holds in memory before `resumed` goes out); a task with more has the rest
        # read after `resumed`, paced by the send queue. A task found unknown or not this
        # principal's is unwatched and its buffer dropped; nothing of it is sent.
        fresh_list = [(t, seen) for t, seen in frame.tasks.items() if t in fresh_ids]
        self.registry.watch(self.id, fresh_list, enforce=False)
        tasks: dict[str, tuple[TaskStatus, int, bool]] = {}
        unknown: list[str] = []
        synced: list[tuple[str, int, list[TaskEvent], bool]] = []  # (task, seen, events, complete)
        # The frame's events read before `resumed`: at most _RESUME_PREFETCH in all.
        limit = _RESUME_PREFETCH // max(1, len(fresh_ids))
        asks = [(t, self.principal, seen, limit if t in fresh_ids else 0) for t, seen in frame.tasks.items()]
        try:
            reads = await self.state.store.task_and_events_many(asks)
        except BaseException:
            # Nothing is half-watched: the client gets the store's error and resumes again.
            self.registry.unwatch(self.id, list(fresh_ids))
            raise
        for (task_id, _, seen, asked), (task, events) in zip(asks, reads, strict=True):
            if task is None or task.principal != self.principal:
                unknown.append(task_id)
                continue
            # recovered=False: events after `seen` existed but retention removed them;
            # the status and seq here are still the task's true current state.
            recovered = not (task.history_pruned and seen < task.seq)
            tasks[task_id] = (task.status, task.seq, recovered)
            if task_id in fresh_ids:
                synced.append((task_id, seen, events, len(events) < asked))
        if unknown:
            self.registry.unwatch(self.id, [t for t in unknown if t in fresh_ids])
        # `resumed` and the events read with it leave in one write while the socket keeps up.
        self._corked = []
        try:
            self.send(resumed_frame(frame.ref, tasks, unknown))
            rest: list[tuple[str, int, list[TaskEvent]]] = []
            for task_id, seen, events, complete in synced:
                if complete and not rest:
                    self.registry.finish_sync(self.id, task_id, events)
                else:
                    rest.append((task_id, events[-1].seq if events else seen, events))
        finally:
            self._uncork()
        for task_id, after, events in rest:
            await self._make_room()
            await self.sync(task_id, after, events)

    async def sync(self, task_id: str, after_seq: int, before: list[TaskEvent] | None = None) -> None:
        """Send what the store has after ``after_seq`` for a watched task (after the events
        ``before``, already read), then its live events."""
        try:
            events = await self.state.store.events_after(task_id, after_seq)
        except GatewayError:
            # Without the stored events the watch can't be made gap-free: the client's
            # universal recovery (reconnect, resume) is the right one.
            raise self._close(CloseCode.INTERNAL_ERROR, "store unavailable; reconnect and resume") from None
        self.registry.finish_sync(self.id, task_id, [*before, *events] if before else events)

    async def _make_room(self) -> None:
        """Wait until the send queue is at most half full, reading no frames from this
        socket meanwhile: a big resume paces itself to a reader that keeps up, and one that
        doesn't is closed as slow."""
        if not self._queue_limit or self._queued_bytes <= self._queue_limit // 2:
            return
        self._room = asyncio.Event()
        try:
            async with asyncio.timeout(self._send_timeout):
                await self._room.wait()
        except TimeoutError:
            raise self._close(CloseCode.SLOW_CONSUMER, "client too slow; reconnect and resume") from None
        finally:
            self._room = None

    def _refuse(self, ref: str | int | None, err: QuotaExceeded) -> None:
        """An error frame for a frame over a bound; a client that keeps sending them is cut off."""
        if self._refusals is None:
            self._refusals = TokenBucket(1.0, _REFUSALS_BURST)
        if self._refusals.take():
            self.send(error_frame_of(ref, err))
        else:
            self._close(CloseCode.QUOTA_EXCEEDED, "too many frames over the rate limit")

    def _close(self, code: CloseCode, reason: str) -> _Close:
        self.registry.close(self.id, code, reason)
        return self.closing or _Close(code, reason)


def _error_fields(error: ErrorInfo | None) -> dict[str, Any] | None:
    return error.model_dump(exclude_none=True) if error else None


def _ceil(seconds: float) -> int:
    return max(1, math.ceil(seconds))


def _authenticated(state: GatewayState, token: str | None, host: str) -> str:
    try:
        return state.auth.authenticate(token, host)
    except RateLimited:
        raise _Close(CloseCode.QUOTA_EXCEEDED, "too many failed authentications; retry later") from None
    except AuthenticationFailed:
        raise _Close(CloseCode.AUTH_FAILED, "invalid token") from None


async def _authenticate(ws: WebSocket, state: GatewayState, host: str, compact: bool) -> str:
    """The principal, from the handshake's bearer header or a first ``auth`` frame."""
    header = bearer_token(ws.headers.get("authorization"))
    if header is not None:
        return _authenticated(state, header, host)
    try:
        async with asyncio.timeout(state.settings.ws_auth_timeout):
            message = await ws.receive()
    except TimeoutError:
        raise _Close(CloseCode.AUTH_TIMEOUT, "no auth frame in time") from None
    text = message.get("text")
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000))
    if text is None or len(text) > state.settings.ws_max_frame_bytes:
        raise _Close(CloseCode.AUTH_FAILED, "first frame must be an auth frame")
    try:
        frame = parse_client_frame(text, compact)
    except GatewayError:
        raise _Close(CloseCode.AUTH_FAILED, "first frame must be an auth frame") from None
    if not isinstance(frame, AuthFrame):
        raise _Close(CloseCode.AUTH_FAILED, "first frame must be an auth frame")
    principal = _authenticated(state, frame.token, host)
    async with asyncio.timeout(state.settings.ws_send_timeout or None):
        await ws.send_text(encode_frame(authenticated_frame(frame.ref, principal), compact))
    return principal


async def websocket_endpoint(ws: WebSocket) -> None:
    state = gateway_state(ws.app)
    origin = ws.headers.get("origin")
    host = ws.client.host if ws.client else "?"
    peer = f"{host}:{ws.client.port}" if ws.client else "?"
    if not state.origins.allows(origin):
        log.warning("ws refused origin=%s peer=%s", origin, peer)
        await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
        return
    abort: Callable[[], None] | None = ws.scope.get("extensions", {}).get(ABORT_EXTENSION)
    # The compact form if the client offers it (a subprotocol: no extra round trip, and a
    # client that does not offer it gets v1 byte for byte).
    compact = COMPACT_SUBPROTOCOL in ws.scope.get("subprotocols", ())
    await ws.accept(subprotocol=COMPACT_SUBPROTOCOL if compact else None)
    started = time.monotonic()
    session: WsSession | None = None
    code, reason, ours = 1000, "client closed", False
    try:
        principal = await _authenticate(ws, state, host, compact)
        # The handshake's head is read (origin, token): an idle socket should not carry it
        # for its whole life (about 1.5 KiB of header tuples per socket).
        ws.scope["headers"] = []
        ws.__dict__.pop("_headers", None)
        session = WsSession(ws, state, principal, compact)
        try:
            state.registry.attach(session)
        except QuotaExceeded as err:
            raise _Close(CloseCode.QUOTA_EXCEEDED, err.message) from None
        log.info("ws open conn=%s principal=%s peer=%s origin=%s", session.id, principal, peer, origin)
        await session.run()
    except _Close as close:
        code, reason, ours = close.code, close.reason, True
    except WebSocketDisconnect as disconnect:
        # uvicorn closed it at shutdown (1001, see transport.py), or the client did.
        code, reason = disconnect.code, "server shutdown" if state.draining else "client closed"
    except (OSError, RuntimeError):
        code, reason = 1006, "connection lost"
    except asyncio.CancelledError:
        # uvicorn's graceful timeout ran out: its protocol already sent 1001 (transport.py).
        code, reason = (int(CloseCode.GOING_AWAY), "server shutdown") if state.draining else (1006, "cancelled")
        raise
    except Exception as exc:  # a bug: logged with a reference the client also gets
        reference = uuid.uuid4().hex[:12]
        log.error("ws internal error peer=%s reference=%s", peer, reference, exc_info=exc)
        code, reason, ours = CloseCode.INTERNAL_ERROR, f"internal error, reference {reference}", True
    finally:
        if session is not None:
            state.registry.detach(session.id)
        if ours:
            await _end_connection(ws, code, reason, abort)
        what = f"conn={session.id}" if session is not None else f"before auth peer={peer}"
        if session is not None or ours:
            metrics.socket_closed(code)
            log.info("ws close %s code=%d reason=%s duration=%.1fs", what, code, reason, time.monotonic() - started)


async def _end_connection(ws: WebSocket, code: int, reason: str, abort: Callable[[], None] | None) -> None:
    """Send a close frame if it can go out at once; never wait on a peer that stopped reading."""
    try:
        async with asyncio.timeout(_CLOSE_SEND_SECONDS):
            await ws.close(code=code, reason=reason.encode()[:120].decode(errors="ignore"))
    except TimeoutError:
        if abort is not None:
            abort()
        return
    except (RuntimeError, OSError):
        pass  # already closed
    if abort is not None:
        # The close frame is queued; if the peer neither answers it nor reads, drop it.
        asyncio.get_running_loop().call_later(_CLOSE_GRACE_SECONDS, abort)
