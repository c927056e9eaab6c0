"""Publish accepted tasks to the Dramatiq queue: persistent, mandatory, confirmed.

The body is exactly Dramatiq's wire format (an extra top-level key would make workers
dead-letter it); the queue is declared with exactly Dramatiq's arguments.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any, cast

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from gateway import metrics
from gateway.amqp import AmqpLink
from gateway.ids import new_message_id
from shared.config import Settings
from shared.errors import BrokerUnavailable
from shared.names import TASK_ACTOR, TASK_ID_HEADER, TASK_QUEUE, dramatiq_queue_arguments
from shared.store import TaskRecord

__all__ = ["TaskPublisher", "dramatiq_body"]


def dramatiq_body(task_id: str, kind: str, payload: dict[str, Any], attempt: int = 1) -> bytes:
    """Dramatiq's message; ``attempt`` > 1 (an operator's retry) travels as Dramatiq's own
    ``retries`` option, which the workers read as the attempt number."""
    message = {
        "queue_name": TASK_QUEUE,
        "actor_name": TASK_ACTOR,
        "args": [task_id, kind, payload],
        "kwargs": {},
        "options": {"retries": attempt - 1} if attempt > 1 else {},
        "message_id": task_id,
        "message_timestamp": int(time.time() * 1000),
    }
    return json.dumps(message, separators=(",", ":")).encode()


class TaskPublisher:
    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.publish_timeout
        self._channel: AbstractChannel | None = None
        self.link = AmqpLink(settings.amqp_url, "gateway", self._setup, on_down=self._down)

    async def _setup(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(TASK_QUEUE, durable=True, arguments=dramatiq_queue_arguments())
        self._channel = channel

    def _down(self) -> None:
        self._channel = None

    @property
    def ready(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    async def publish(self, task: TaskRecord, attempt: int = 1) -> None:
        """Return once RabbitMQ confirmed a persistent copy on the durable queue."""
        channel = self._channel
        if channel is None or channel.is_closed:
            raise BrokerUnavailable("RabbitMQ is not reachable; the task was not accepted. Retry.")
        assert task.payload is not None
        message = aio_pika.Message(
            dramatiq_body(task.id, task.kind, task.payload, attempt),
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            content_type="application/json",
            # Unique per publish: aiormq matches returns by it (aio-pika #689). The task id,
            # which Dramatiq keeps in the body's message_id, is what an operator looks for in
            # the console: it travels as the correlation id and in a header.
            message_id=new_message_id(),
            correlation_id=task.id,
            headers={TASK_ID_HEADER: task.id},
            app_id="gateway",
            type=task.kind,
        )
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout):
                # aiormq's own publish (aio-pika's Exchange.publish calls it with wait=True):
                # wait=False releases the channel's lock once the frame is queued, not once
                # it is written, so publishes queued in one loop turn leave in one socket
                # write (gateway/amqp_writes.py). The confirm is awaited all the same, and a
                # return (mandatory, on_return_raises) or a nack still raises.
                # aiormq's Channel has ``wait``; its abstract base does not declare it.
                underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
                await underlay.basic_publish(
                    message.body,
                    routing_key=TASK_QUEUE,
                    properties=message.properties,
                    mandatory=True,
                    wait=False,
                )
        except Exception as exc:
            raise BrokerUnavailable(
                f"RabbitMQ did not confirm the task ({type(exc).__name__}); it was not accepted. Retry."
            ) from exc
        metrics.publish_confirmed(time.perf_counter() - started)
