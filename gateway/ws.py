"""The WebSocket endpoint ``/v1/ws``: a thin adapter between a socket and the hub.

Per connection: a receive loop (client frames) and a send loop draining a bounded
queue. Nothing ever awaits a slow socket on behalf of others: the relay only puts
frames in queues; a client whose queue is full is closed with SLOW_CONSUMER and
resumes when it reconnects.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from gateway.auth import bearer_token
from gateway.state import GatewayState, gateway_state
from shared.errors import (
    AuthenticationFailed,
    CloseCode,
    GatewayError,
    InvalidRequest,
)
from shared.events import TaskEvent
from shared.protocol import (
    AuthFrame,
    PingFrame,
    ResumeFrame,
    SubmitFrame,
    accepted_frame,
    error_frame,
    event_frame,
    parse_client_frame,
)

__all__ = ["MAX_WATCHES", "WsSession", "websocket_endpoint"]

log = logging.getLogger(__name__)
MAX_WATCHES = 10_000


class _Close(Exception):
    def __init__(self, code: CloseCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class WsSession:
    def __init__(self, ws: WebSocket, state: GatewayState, principal: str) -> None:
        self.id = uuid.uuid4().hex[:12]
        self.ws = ws
        self.state = state
        self.principal = principal
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(state.settings.ws_send_queue)
        self.closing: _Close | None = None
        self._closed = asyncio.Event()

    def send(self, frame: dict[str, Any]) -> None:
        """Queue a frame; never blocks. A full queue means the client is too slow."""
        if self.closing is not None:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            self.close(CloseCode.SLOW_CONSUMER, "client too slow; reconnect and resume")

    def close(self, code: CloseCode, reason: str) -> None:
        """Close soon, even if the send loop is stuck writing to a client that stopped reading."""
        if self.closing is None:
            self.closing = _Close(code, reason)
            self._closed.set()

    def deliver(self, events: list[TaskEvent]) -> None:
        for event in events:
            self.send(event_frame(event))

    async def sync(self, task_id: str, after_seq: int) -> None:
        """Send what the store has after ``after_seq`` for a watched task, then its live events."""
        try:
            events = await self.state.store.events_after(task_id, after_seq)
        except GatewayError:
            # Without the stored events the watch can't be made gap-free: the client's
            # universal recovery (reconnect, resume) is the right one.
            raise _Close(CloseCode.INTERNAL_ERROR, "store unavailable; reconnect and resume") from None
        self.deliver(self.state.hub.finish_sync(self.id, task_id, events))

    async def send_loop(self) -> None:
        while True:
            frame = await self.queue.get()
            await self.ws.send_text(json.dumps(frame, separators=(",", ":")))

    async def close_watch(self) -> None:
        await self._closed.wait()
        assert self.closing is not None
        raise self.closing

    async def receive_loop(self) -> None:
        limit = self.state.settings.ws_max_frame_bytes
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
            text = message.get("text")
            if text is None:
                self.send(error_frame(None, InvalidRequest("Binary frames are not supported; send JSON text.")))
                continue
            if len(text) > limit:
                raise _Close(CloseCode.MESSAGE_TOO_BIG, f"frame larger than {limit} bytes")
            await self.handle(text)

    async def handle(self, text: str) -> None:
        frame = None
        try:
            frame = parse_client_frame(text)
            if isinstance(frame, SubmitFrame):
                await self._submit(frame)
            elif isinstance(frame, ResumeFrame):
                await self._resume(frame)
            elif isinstance(frame, PingFrame):
                self.send({"type": "pong", "ref": frame.ref})
            elif isinstance(frame, AuthFrame):
                raise InvalidRequest("Already authenticated.")
        except GatewayError as err:  # ClientError: fix the frame; Unavailable: retry it later
            self.send(error_frame(err.ref if frame is None else frame.ref, err))

    async def _submit(self, frame: SubmitFrame) -> None:
        # Checked before submitting: once accepted, the task must be watched, not refused.
        self._check_capacity(1)
        outcome = await self.state.submissions.submit(self.principal, frame.idempotency_key, frame.kind, frame.payload)
        task = outcome.task
        self.state.hub.watch(self.id, task.id, 0)
        self.send(accepted_frame(frame.ref, task.id, outcome.duplicate, task.status))
        await self.sync(task.id, 0)

    async def _resume(self, frame: ResumeFrame) -> None:
        self._check_capacity(len(frame.tasks))
        tasks: dict[str, dict[str, Any]] = {}
        unknown: list[str] = []
        known: list[tuple[str, int]] = []
        # All reads first: if the store fails midway, nothing is half-watched.
        for task_id, seen in frame.tasks.items():
            task = await self.state.store.get(task_id)
            if task is None or task.principal != self.principal:
                unknown.append(task_id)
                continue
            # recovered=False: events after `seen` existed but retention removed them;
            # the status and seq here are still the task's true current state.
            recovered = not (task.history_pruned and seen < task.seq)
            tasks[task_id] = {"status": task.status.value, "seq": task.seq, "recovered": recovered}
            known.append((task_id, seen))
        for task_id, seen in known:
            self.state.hub.watch(self.id, task_id, seen)
        self.send({"type": "resumed", "ref": frame.ref, "tasks": tasks, "unknown": unknown})
        for task_id, seen in known:
            await self.sync(task_id, seen)

    def _check_capacity(self, more: int) -> None:
        if self.state.hub.watch_count(self.id) + more > MAX_WATCHES:
            raise InvalidRequest(f"A connection may watch at most {MAX_WATCHES} tasks; open another.")


async def _authenticate(ws: WebSocket, state: GatewayState) -> str:
    """The principal, from the handshake's bearer header or a first ``auth`` frame."""
    header = bearer_token(ws.headers.get("authorization"))
    if header is not None:
        principal = state.auth.principal(header)
        if principal is None:
            raise _Close(CloseCode.AUTH_FAILED, "invalid token")
        return principal
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
        frame = parse_client_frame(text)
    except GatewayError:
        raise _Close(CloseCode.AUTH_FAILED, "first frame must be an auth frame") from None
    if not isinstance(frame, AuthFrame):
        raise _Close(CloseCode.AUTH_FAILED, "first frame must be an auth frame")
    principal = state.auth.principal(frame.token)
    if principal is None:
        raise _Close(CloseCode.AUTH_FAILED, "invalid token")
    await ws.send_text(json.dumps({"type": "authenticated", "ref": frame.ref, "principal": principal}))
    return principal


async def websocket_endpoint(ws: WebSocket) -> None:
    state = gateway_state(ws.app)
    origin = ws.headers.get("origin")
    peer = f"{ws.client.host}:{ws.client.port}" if ws.client else "?"
    if not state.origins.allows(origin, ws.headers.get("host")):
        log.warning("ws refused origin=%s peer=%s", origin, peer)
        await ws.close(code=1008)  # before accept: the handshake gets HTTP 403
        return
    await ws.accept()
    started = time.monotonic()
    session: WsSession | None = None
    code, reason = CloseCode.NORMAL, "client closed"
    try:
        principal = await _authenticate(ws, state)
        session = WsSession(ws, state, principal)
        state.sessions[session.id] = session
        state.hub.add(session.id)
        log.info("ws open conn=%s principal=%s peer=%s origin=%s", session.id, principal, peer, origin)
        async with asyncio.TaskGroup() as group:
            group.create_task(session.receive_loop())
            group.create_task(session.send_loop())
            group.create_task(session.close_watch())
    except* _Close as group:
        close = group.exceptions[0]
        assert isinstance(close, _Close)
        code, reason = close.code, close.reason
        await _close_quietly(ws, close.code, close.reason)
    except* WebSocketDisconnect as group:
        disconnect = group.exceptions[0]
        assert isinstance(disconnect, WebSocketDisconnect)
        reason = f"client closed ({disconnect.code})"
    except* (OSError, RuntimeError):
        reason = "connection lost"
    except* AuthenticationFailed:
        code, reason = CloseCode.AUTH_FAILED, "invalid token"
        await _close_quietly(ws, code, reason)
    finally:
        if session is not None:
            state.hub.remove(session.id)
            state.sessions.pop(session.id, None)
            log.info(
                "ws close conn=%s code=%d reason=%s duration=%.1fs",
                session.id,
                int(code),
                reason,
                time.monotonic() - started,
            )
        elif code != CloseCode.NORMAL:
            log.info("ws close before auth peer=%s code=%d reason=%s", peer, int(code), reason)


async def _close_quietly(ws: WebSocket, code: CloseCode, reason: str) -> None:
    try:
        await ws.close(code=int(code), reason=reason)
    except (RuntimeError, OSError):
        pass
