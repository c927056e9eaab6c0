"""Publish task events to RabbitMQ from a worker thread, confirmed and persistent.

Every event is signed (shared/signing.py): gateways store only what a worker signed.
Uses the broker's own per-thread channel (publisher confirms on, since the broker is
built with ``confirm_delivery=True``) and the same reconnect-and-retry loop Dramatiq's
``enqueue`` uses. Raises if the event cannot be confirmed: the caller then lets the
message be retried, so a final event is never silently lost.

``notify`` publishes an event the worker has stored already (``running``) without waiting
for the broker's confirm, on a second channel of the thread's connection: the store holds
it (a resume or a poll finds it), so the publish only brings it to sockets sooner, and the
worker goes on to Odoo instead of waiting a broker round trip (and a disk sync) for it.
"""

from __future__ import annotations

import logging
import threading
import time

import pika
import pika.exceptions
from dramatiq.brokers.rabbitmq import RabbitmqBroker

from shared.events import TaskEvent
from shared.names import EVENTS_EXCHANGE, TASK_ID_HEADER
from shared.signing import SIGNATURE_HEADER, EventSigner

__all__ = ["EventPublisher"]

log = logging.getLogger(__name__)
_ATTEMPTS = 6


class EventPublisher:
    def __init__(self, broker: RabbitmqBroker, signer: EventSigner) -> None:
        self._broker = broker
        self._signer = signer
        self._unconfirmed = threading.local()

    def notify(self, event: TaskEvent) -> None:
        """Publish an event already in the store, unconfirmed; if the thread's connection
        fails, publish it as ``__call__`` does (reconnect, confirm, raise if it cannot)."""
        body, properties = self._message(event)
        try:
            self._unconfirmed_channel().basic_publish(
                exchange=EVENTS_EXCHANGE, routing_key=f"task.{event.status.value}", body=body, properties=properties
            )
        except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
            log.warning("event notify failed task=%s seq=%s (%r); publishing confirmed", event.task_id, event.seq, exc)
            self._unconfirmed.channel = None
            self(event)

    def _unconfirmed_channel(self) -> pika.adapters.blocking_connection.BlockingChannel:
        """A channel without confirms on this thread's connection (Dramatiq's own channel
        has them on), opened again whenever that connection was replaced."""
        connection = self._broker.connection
        channel = getattr(self._unconfirmed, "channel", None)
        if channel is None or not channel.is_open or getattr(self._unconfirmed, "connection", None) is not connection:
            channel = connection.channel()
            self._unconfirmed.channel, self._unconfirmed.connection = channel, connection
        return channel

    def _message(self, event: TaskEvent) -> tuple[bytes, pika.BasicProperties]:
        body = event.model_dump_json().encode()
        properties = pika.BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            message_id=f"{event.task_id}:{event.seq}",
            correlation_id=event.task_id,
            app_id="worker",
            type=event.status.value,
            headers={SIGNATURE_HEADER: self._signer.sign(body), TASK_ID_HEADER: event.task_id},
        )
        return body, properties

    def __call__(self, event: TaskEvent) -> None:
        body, properties = self._message(event)
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                self._broker.channel.basic_publish(
                    exchange=EVENTS_EXCHANGE,
                    routing_key=f"task.{event.status.value}",
                    body=body,
                    properties=properties,
                    mandatory=True,
                )
                return
            except (pika.exceptions.AMQPConnectionError, pika.exceptions.AMQPChannelError) as exc:
                del self._broker.connection
                if attempt == _ATTEMPTS:
                    raise
                log.warning("event publish failed task=%s seq=%s (%r); retrying", event.task_id, event.seq, exc)
                time.sleep(min(0.2 * 2**attempt, 5.0))
