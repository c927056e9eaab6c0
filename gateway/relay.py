"""The event relay: task events from workers -> task store -> every gateway's sockets.

Two consumers on one connection:

- the durable queue ``gateway.task_events``, shared by all gateway instances (competing
  consumers): each event is stored once (workers store ``running`` and final events
  themselves before publishing them: a read finds those), acknowledged only once the store
  holds it, then pushed to this instance's sockets and announced on the ``gateway.live``
  fanout exchange;
- this instance's exclusive queue on ``gateway.live``: events announced by the other
  instances (and operators' reopens) go to the hub.

After every (re)connect, sockets are resynchronised from the store, which covers any
announcement missed while the connection was down.

Only events a worker signed are stored or pushed (shared/signing.py): anything else on
either queue is dropped, counted in :attr:`EventRelay.forged_events`, and logged. While the
store is unreachable the relay stops consuming (events wait, unacknowledged, in RabbitMQ)
and starts again once the store answers.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractConnection, AbstractIncomingMessage, AbstractQueue
from pydantic import ValidationError

from gateway import metrics
from gateway.amqp import AmqpLink
from gateway.keyed_lock import KeyedLock
from gateway.registry import SessionRegistry
from shared.config import Settings
from shared.errors import GatewayError, StoreUnavailable
from shared.events import TaskEvent
from shared.names import (
    EVENTS_EXCHANGE,
    LIVE_EXCHANGE,
    STORE_QUEUE,
    STORE_QUEUE_DEAD,
    TASK_ID_HEADER,
    live_queue_name,
    store_queue_arguments,
)
from shared.signing import SIGNATURE_HEADER, EventSigner
from shared.store import AsyncTaskStore

__all__ = ["EventRelay"]

log = logging.getLogger(__name__)
_STORE_PROBE_SECONDS = 1.0
#: On a live announcement: the relay that sent it, which delivered it to its own sockets.
_ORIGIN_HEADER = "x-gateway-origin"


class EventRelay:
    def __init__(self, settings: Settings, store: AsyncTaskStore, registry: SessionRegistry) -> None:
        self._store = store
        self._registry = registry
        self._signer = EventSigner.from_settings(settings)
        # Announcements go out on a channel of their own, without publisher confirms: a
        # confirm would only tell the relay what it does nothing with (a lost announcement
        # is logged either way, and sockets catch up at their next resume), and cost a
        # round trip through the broker while the task's lock is held.
        self._announcer: aiormq.Channel | None = None
        self._store_queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._store_probe: asyncio.Task[None] | None = None
        # Each task's events are stored and announced in delivery order (keyed_lock.py).
        self._in_order = KeyedLock()
        self._origin = uuid.uuid4().hex
        #: Messages dropped because no worker signed them (README "Security").
        self.forged_events = 0
        self._connections = 0
        self.link = AmqpLink(settings.amqp_url, "gateway-events", self._setup, on_down=self._down)

    def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    @property
    def ready(self) -> bool:
        return self.link.up.is_set()

    def _down(self) -> None:
        self._announcer = None
        self._store_queue = None
        self._consumer_tag = None
        if self._store_probe is not None:
            self._store_probe.cancel()
            self._store_probe = None

    async def _setup(self, connection: AbstractConnection) -> None:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=64)
        events = await channel.declare_exchange(EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True)
        await channel.declare_queue(STORE_QUEUE_DEAD, durable=True)
        store_queue = await channel.declare_queue(STORE_QUEUE, durable=True, arguments=store_queue_arguments())
        await store_queue.bind(events, routing_key="task.#")
        live = await channel.declare_exchange(LIVE_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        self._connections += 1
        live_queue = await channel.declare_queue(live_queue_name(self._connections), exclusive=True, auto_delete=True)
        await live_queue.bind(live)
        await live_queue.consume(self._on_live, no_ack=True)
        announcer = await connection.channel(publisher_confirms=False)
        # aiormq's Channel has ``wait`` on basic_publish; its abstract base does not declare it.
        self._announcer = cast(aiormq.Channel, await announcer.get_underlay_channel())
        self._store_queue = store_queue
        self._consumer_tag = await store_queue.consume(self._on_event)
        await self._resync()

    async def _resync(self) -> None:
        """Send every watching socket what it may have missed while announcements could
        not arrive (this connection was down): the store has it all."""
        for task_id, after in self._registry.positions().items():
            for event in await self._store.events_after(task_id, after):
                self._registry.deliver(event)

    def _signed(self, message: AbstractIncomingMessage, queue: str) -> bool:
        if self._signer.verify(message.body, (message.headers or {}).get(SIGNATURE_HEADER)):
            return True
        self.forged_events += 1
        metrics.anomaly("forged_event")
        log.warning(
            "unsigned or badly signed event dropped queue=%s routing_key=%.64r message_id=%.64r forged_total=%d",
            queue,
            message.routing_key,
            message.message_id,
            self.forged_events,
        )
        return False

    async def _on_event(self, message: AbstractIncomingMessage) -> None:
        if not self._signed(message, STORE_QUEUE):
            await message.reject(requeue=False)  # dead-lettered, for an operator to look at
            return
        try:
            event = TaskEvent.model_validate_json(message.body)
        except ValidationError:
            log.error("unreadable task event dead-lettered to %s", STORE_QUEUE_DEAD)
            metrics.anomaly("unreadable_event")
            await message.reject(requeue=False)
            return
        async with self._in_order.hold(event.task_id):
            await self._store_and_announce(message, event)

    async def _store_and_announce(self, message: AbstractIncomingMessage, event: TaskEvent) -> None:
        try:
            # Workers store ``running`` and the final event themselves before publishing
            # them: a read (batched, no write lock) finds those, and the relay writes only
            # what it must, instead of queueing for the store's writer once per event.
            stored = await self._stored_already(event)
            applied = False if stored else await self._store.apply_event(event)
            # An older event arriving late only joins the history: not announced. (One that
            # another instance stored meanwhile is announced by that instance.)
            announce = stored or applied
        except StoreUnavailable as exc:
            log.warning("store unavailable, event task=%s seq=%d requeued (%s)", event.task_id, event.seq, exc)
            await message.nack(requeue=True)
            await self._pause_until_store_answers()
            return
        if applied:
            log.info("task %s %s seq=%d stored", event.task_id, event.status.value, event.seq)
        if announce:
            metrics.event_relayed(event.status.value, time.time() - event.at)
            # Sockets on this instance first, without a round trip through the broker; the
            # announcement below reaches the other instances (_on_live skips its own).
            self._registry.deliver(event)
            # The worker's signature, verified above, travels on with the body.
            signature = (message.headers or {})[SIGNATURE_HEADER]
            await self._announce(message.body, signature, event.task_id, origin=self._origin)
        await message.ack()

    async def _stored_already(self, event: TaskEvent) -> bool:
        """Whether the store holds ``event``, so it may be announced (a duplicate
        announcement is harmless: each socket gets a seq once). A final event counts only
        as the final state the store holds: one it does not hold is never announced."""
        if event.status.final:
            task = await self._store.get(event.task_id)
            return task is not None and task.seq == event.seq and task.status is event.status
        held = await self._store.events_after(event.task_id, event.seq - 1, limit=1)
        return bool(held) and held[0].seq == event.seq

    async def _pause_until_store_answers(self) -> None:
        """Stop taking events (they would only be requeued, over and over) until the store
        answers a ping; then take them again."""
        queue, tag = self._store_queue, self._consumer_tag
        if queue is None or tag is None or self._store_probe is not None:
            return
        self._consumer_tag = None
        log.warning("store unavailable: event consumption paused")
        try:
            await queue.cancel(tag)
        except Exception as exc:  # the channel went: _setup consumes afresh on reconnect
            log.warning("pausing event consumption failed (%r)", exc)
            return
        self._store_probe = asyncio.create_task(self._resume_when_store_answers(queue))

    async def _resume_when_store_answers(self, queue: AbstractQueue) -> None:
        while True:
            await asyncio.sleep(_STORE_PROBE_SECONDS)
            try:
                await self._store.ping()
            except GatewayError:
                continue
            break
        try:
            self._consumer_tag = await queue.consume(self._on_event)
            log.info("store answers again: event consumption resumed")
            await self._resync()
        except Exception as exc:  # the channel went: _setup consumes afresh on reconnect
            log.warning("resuming event consumption failed (%r)", exc)
        finally:
            self._store_probe = None

    async def announce(self, event: TaskEvent) -> bool:
        """Announce an event the gateway stored itself (an operator's reopen) to every
        gateway's sockets, signed as the workers sign theirs. False if the connection is
        down (sockets that watch the task get it at their next resume)."""
        body = event.model_dump_json().encode()
        return await self._announce(body, self._signer.sign(body), event.task_id, origin=None)

    async def _announce(
        self, body: bytes, signature: aiormq.abc.FieldValue, task_id: str, *, origin: str | None
    ) -> bool:
        """Publish to the ``gateway.live`` fanout; False (and a log line) if it could not be
        handed to the broker. ``origin``: this relay, which has delivered the event to its own
        sockets already (its own copy is skipped in ``_on_live``)."""
        announcer = self._announcer
        if announcer is None or announcer.is_closed:
            log.warning("live announce skipped task=%s: no connection", task_id)
            return False
        headers: dict[str, aiormq.abc.FieldValue] = {SIGNATURE_HEADER: signature, TASK_ID_HEADER: task_id}
        if origin is not None:
            headers[_ORIGIN_HEADER] = origin
        # pamqp's properties as aio-pika's Message would build them (transient, priority 0).
        properties = aiormq.spec.Basic.Properties(headers=headers, correlation_id=task_id, app_id="gateway", priority=0)
        try:
            await announcer.basic_publish(
                body, exchange=LIVE_EXCHANGE, routing_key="", properties=properties, wait=False
            )
        except Exception as exc:  # stored already; sockets catch up at their next resume
            log.warning("live announce failed task=%s (%r)", task_id, exc)
            return False
        return True

    async def _on_live(self, message: AbstractIncomingMessage) -> None:
        if (message.headers or {}).get(_ORIGIN_HEADER) == self._origin:
            return  # delivered here already, when it was stored (a forger gains nothing: dropped)
        if not self._signed(message, "live"):
            return
        try:
            event = TaskEvent.model_validate_json(message.body)
        except ValidationError:
            return
        self._registry.deliver(event)
