"""Stored events -> this instance's sockets: the hub decides who gets what, each socket's
session queues it. Also the resync after the relay was disconnected from RabbitMQ."""

from __future__ import annotations

from typing import Any, Protocol

from gateway.hub import Hub
from shared.errors import CloseCode
from shared.events import TaskEvent
from shared.protocol import event_frame
from shared.store import AsyncTaskStore

__all__ = ["Fanout", "FrameSink"]


class FrameSink(Protocol):
    """A socket's session, as the fanout sees it (gateway.ws.WsSession)."""

    def send(self, frame: dict[str, Any]) -> None: ...
    def close(self, code: CloseCode, reason: str) -> None: ...


class Fanout:
    def __init__(self, store: AsyncTaskStore) -> None:
        self.hub = Hub()
        self.sessions: dict[str, FrameSink] = {}
        self._store = store

    def deliver(self, event: TaskEvent) -> None:
        frame = event_frame(event)
        for conn_id in self.hub.route(event):
            session = self.sessions.get(conn_id)
            if session is not None:
                session.send(frame)

    async def resync(self) -> None:
        """Send every watching socket what it may have missed while announcements could
        not arrive (the relay's RabbitMQ connection was down): the store has it all."""
        for task_id, after in self.hub.positions().items():
            for event in await self._store.events_after(task_id, after):
                self.deliver(event)
