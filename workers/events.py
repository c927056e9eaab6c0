"""Publish task events to RabbitMQ from a worker thread, confirmed and persistent.

Every event is signed (shared/signing.py): gateways store only what a worker signed.
Uses the broker's own per-thread channel (publisher confirms on, since the broker is
built with ``confirm_delivery=True``) and the same reconnect-and-retry loop Dramatiq's
``enqueue`` uses. Raises if the event cannot be confirmed: the caller then lets the
message be retried, so a final event is never silently lost.
"""

from __future__ import annotations

import logging
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

    def __call__(self, event: TaskEvent) -> None:
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
