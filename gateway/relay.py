"""The event relay: task events from workers -> task store -> every gateway's sockets.

Two consumers on one connection:

- the durable queue ``gateway.task_events``, shared by all gateway instances (competing
  consumers): each event is stored once, acknowledged only after the store committed,
  then announced on the ``gateway.live`` fanout exchange;
- this instance's exclusive queue on ``gateway.live``: announced events go to the hub.

After every (re)connect, sockets are resynchronised from the store, which covers any
announcement missed while the connection was down.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractConnection, AbstractExchange, AbstractIncomingMessage
from pydantic import ValidationError

from gateway.amqp import AmqpLink
from shared.config import Settings
from shared.errors import StoreUnavailable
from shared.events import TaskEvent
from shared.names import (
    EVENTS_EXCHANGE,
    LIVE_EXCHANGE,
    STORE_QUEUE,
    STORE_QUEUE_DEAD,
    store_queue_arguments,
)
from shared.store import AsyncTaskStore

__all__ = ["EventRelay"]

log = logging.getLogger(__name__)


class EventRelay:
    def __init__(
        self,
        settings: Settings,
        store: AsyncTaskStore,
        deliver: Callable[[TaskEvent], None],
        resync: Callable[[], Awaitable[None]],
    ) -> None:
        self._store = store
        self._deliver = deliver
        self._resync = resync
        self._live: AbstractExchange | None = None
        self.link = AmqpLink(settings.amqp_url, "gateway-events", self._setup, on_down=self._down)

    def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    @property
    def ready(self) -> bool:
        return self.link.up.is_set()

    def _down(self) -> None:
        self._live = None

    async def _setup(self, connection: AbstractConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=64)
        events = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await channel.declare_queue(STORE_QUEUE_DEAD, durable=True)
        store_queue = await channel.declare_queue(STORE_QUEUE, durable=True, arguments=store_queue_arguments())
        await store_queue.bind(events, routing_key="task.#")
        self._live = await channel.declare_exchange(LIVE_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        live_queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await live_queue.bind(self._live)
        await live_queue.consume(self._on_live, no_ack=True)
        await store_queue.consume(self._on_event)
        await self._resync()

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        try:
            event = TaskEvent.model_validate_json(message.body)
        except ValidationError:
            log.error("unreadable task event dead-lettered to %s", STORE_QUEUE_DEAD)
            await message.reject(requeue=False)
            return
        try:
            applied = await self._store.apply_event(event)
        except StoreUnavailable as exc:
            log.warning("store unavailable, event task=%s seq=%d requeued (%s)", event.task_id, event.seq, exc)
            await asyncio.sleep(1.0)
            await message.nack(requeue=True)
            return
        if applied:
            log.info("task %s %s seq=%d stored", event.task_id, event.status.value, event.seq)
        # A final event is stored by its worker before it is published (it frees the task's
        # records for the next task in line), so it reaches here already stored: announce it
        # if it is the final state the store holds (a duplicate announcement is harmless, each
        # socket gets a seq once; a final the store does not hold is never announced).
        if applied or (event.status.final and await self._is_stored_final(event)):
            live = self._live
            if live is not None:
                try:
                    await live.publish(aio_pika.Message(message.body), routing_key="")
                except Exception as exc:  # stored already; sockets resync on reconnect
                    log.warning("live announce failed task=%s (%r)", event.task_id, exc)
        await message.ack()

    async def _is_stored_final(self, event: TaskEvent) -> bool:
        try:
            task = await self._store.get(event.task_id)
        except StoreUnavailable:
            return False  # sockets resync from the store on reconnect
        return task is not None and task.seq == event.seq and task.status is event.status

    async def _on_live(self, message: AbstractIncomingMessage) -> None:
        try:
            event = TaskEvent.model_validate_json(message.body)
        except ValidationError:
            return
        self._deliver(event)
