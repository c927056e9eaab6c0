"""The connection registry: the one owner of every socket session's lifecycle.

Sessions are attached here (or refused: too many sockets for the tenant), watch tasks
through here (or are refused: too many watches for the socket or the tenant), get events
routed by the :class:`~gateway.hub.Hub`, and are closed only through :meth:`close`,
which first takes the session out of the hub and the tenant's counts and then tells the
session to shut down without waiting on its socket. Nothing else adds, removes or closes a
session, so a slow or dead socket can't keep holding memory through a path that forgot.

Plain code with no I/O: closing a session only sets its state; its own tasks do the
socket work, each with a time bound (gateway/ws.py).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any, Protocol

from gateway import metrics
from gateway.encoded import EncodedFrame
from gateway.hub import Hub
from odoo_gateway_wire.close_codes import CloseCode
from odoo_gateway_wire.frames import encode_frame
from shared.errors import QuotaExceeded
from shared.events import TaskEvent
from shared.protocol import event_frame_of

__all__ = ["Quotas", "Session", "SessionRegistry"]


class Session(Protocol):
    """A socket's session, as the registry sees it (gateway.ws.WsSession)."""

    @property
    def id(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def compact(self) -> bool: ...
    def send(self, frame: dict[str, Any]) -> None: ...
    def send_encoded(self, frame: EncodedFrame) -> None: ...
    def shutdown(self, code: CloseCode, reason: str) -> None: ...
    def drain(self, code: CloseCode, reason: str) -> None: ...


@dataclass(frozen=True)
class Quotas:
    """0 means no bound."""

    sockets_per_tenant: int = 0
    watches_per_socket: int = 0
    watches_per_tenant: int = 0


class SessionRegistry:
    def __init__(self, quotas: Quotas = Quotas()) -> None:
        self.hub = Hub()
        self.quotas = quotas
        self._sessions: dict[str, Session] = {}
        self._sockets: Counter[str] = Counter()
        self._watches: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._sessions)

    def attach(self, session: Session) -> None:
        limit = self.quotas.sockets_per_tenant
        if limit and self._sockets[session.principal] >= limit:
            raise QuotaExceeded(f"A tenant may hold at most {limit} sockets at once.", retry_after_seconds=5)
        self._sessions[session.id] = session
        self._sockets[session.principal] += 1
        self.hub.add(session.id)
        metrics.socket_opened()

    def close(self, session_id: str, code: CloseCode, reason: str) -> None:
        """Detach, then tell the session to go: its queue is freed before any close is sent."""
        session = self._detach(session_id)
        if session is not None:
            session.shutdown(code, reason)

    def close_all(self, code: CloseCode, reason: str) -> None:
        for session_id in list(self._sessions):
            self.close(session_id, code, reason)

    def drain_all(self, code: CloseCode, reason: str) -> None:
        """Server shutdown: each session finishes the frame it is handling and sends what
        is queued, then closes itself through :meth:`close`."""
        for session in list(self._sessions.values()):
            session.drain(code, reason)

    def detach(self, session_id: str) -> None:
        """The session ended on its own (the peer left): forget it."""
        self._detach(session_id)

    def is_watching(self, session_id: str, task_id: str) -> bool:
        return self.hub.is_watching(session_id, task_id)

    def check_watch_room(self, session_id: str, more: int) -> None:
        """Raise :class:`QuotaExceeded` unless the session may watch ``more`` new tasks."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        per_socket, per_tenant = self.quotas.watches_per_socket, self.quotas.watches_per_tenant
        if per_socket and self.hub.watch_count(session_id) + more > per_socket:
            raise QuotaExceeded(f"A socket may watch at most {per_socket} tasks; open another.")
        if per_tenant and self._watches[session.principal] + more > per_tenant:
            raise QuotaExceeded(f"A tenant may watch at most {per_tenant} tasks at once.", retry_after_seconds=5)

    def watch(self, session_id: str, task_ids: list[tuple[str, int]], *, enforce: bool = True) -> None:
        """Watch each ``(task_id, after_seq)`` in syncing mode, all or none. A task this
        socket already watches is left as it is: it has been sent its history already.
        ``enforce=False`` is for a task just accepted on this socket, whose room was
        checked before submitting: it must be watched, whatever happened meanwhile."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        fresh = [(t, after) for t, after in task_ids if not self.hub.is_watching(session_id, t)]
        if enforce:
            self.check_watch_room(session_id, len(fresh))
        for task_id, after in fresh:
            self.hub.watch(session_id, task_id, after)
        self._watches[session.principal] += len(fresh)
        metrics.watches_changed(len(fresh))

    def unwatch(self, session_id: str, task_ids: list[str]) -> None:
        """Undo :meth:`watch` for tasks still syncing (a resume's read failed, or found a
        task unknown or not the session's): what was buffered for them is dropped."""
        session = self._sessions.get(session_id)
        if session is None:
            return
        removed = sum(self.hub.unwatch(session_id, task_id) for task_id in task_ids)
        if removed:
            _take(self._watches, session.principal, removed)
            metrics.watches_changed(-removed)

    def finish_sync(self, session_id: str, task_id: str, stored: list[TaskEvent]) -> None:
        session = self._sessions.get(session_id)
        if session is not None:
            for event in self.hub.finish_sync(session_id, task_id, stored):
                session.send(event_frame_of(event))

    def deliver(self, event: TaskEvent) -> None:
        encoded: dict[bool, EncodedFrame] = {}  # by wire form (compact or not)
        sent = 0
        for session_id in self.hub.route(event):
            session = self._sessions.get(session_id)
            if session is not None:
                frame = encoded.get(session.compact)
                if frame is None:  # once per form, for every socket
                    text = encode_frame(event_frame_of(event), session.compact)
                    frame = encoded[session.compact] = EncodedFrame(text)
                session.send_encoded(frame)
                sent += 1
        if sent:
            metrics.frames_pushed(sent)

    def positions(self) -> dict[str, int]:
        return self.hub.positions()

    def sockets_of(self, principal: str) -> int:
        return self._sockets[principal]

    def watches_of(self, principal: str) -> int:
        return self._watches[principal]

    def _detach(self, session_id: str) -> Session | None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return None
        watches = self.hub.remove(session_id)
        _take(self._watches, session.principal, watches)
        _take(self._sockets, session.principal, 1)
        metrics.socket_detached(watches)
        return session


def _take(counter: Counter[str], principal: str, count: int) -> None:
    """Count ``count`` fewer for ``principal``; a principal at zero is forgotten."""
    counter[principal] -= count
    if counter[principal] <= 0:
        del counter[principal]
