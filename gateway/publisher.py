"""Publish accepted tasks to the Dramatiq queue: persistent, mandatory, confirmed.

The body is exactly Dramatiq's wire format (an extra top-level key would make workers
dead-letter it); the queue is declared with exactly Dramatiq's arguments.
"""

from __future__ import annotations

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

PERSISTENT = int(aio_pika.DeliveryMode.PERSISTENT)


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
        self._underlay: aiormq.Channel | None = None
        self.link = AmqpLink(settings.amqp_url, "gateway", self._setup, on_down=self._down)

    async def _setup(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.declare_queue(TASK_QUEUE, durable=True, arguments=dramatiq_queue_arguments())
        # aiormq's Channel has ``wait`` on basic_publish; its abstract base does not declare it.
        self._underlay = cast(aiormq.Channel, await channel.get_underlay_channel())
        self._channel = channel

    def _down(self) -> None:
        self._channel = None
        self._underlay = None

    @property
    def ready(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    def start(self) -> None:
        self.link.start()

    async def stop(self) -> None:
        await self.link.stop()

    async def publish(self, task: TaskRecord, attempt: int = 1) -> None:
        """Return once RabbitMQ confirmed a persistent copy on the durable queue."""
        channel, underlay = self._channel, self._underlay
        if channel is None or underlay is None or channel.is_closed or underlay.is_closed:
            raise BrokerUnavailable("RabbitMQ is not reachable; the task was not accepted. Retry.")
        assert task.payload is not None
        # pamqp's properties as aio-pika's Message would build them (priority 0 included),
        # without its per-field checks: a tenth of the cost, on every accept.
        properties = aiormq.spec.Basic.Properties(
            delivery_mode=PERSISTENT,
            content_type="application/json",
            priority=0,
            # Unique per publish: aiormq matches returns by it (aio-pika #689). The task id,
            # which Dramatiq keeps in the body's message_id, is what an operator looks for in
            # the console: it travels as the correlation id and in a header.
            message_id=new_message_id(),
            correlation_id=task.id,
            headers={TASK_ID_HEADER: task.id},
            app_id="gateway",
            message_type=task.kind,
        )
        started = time.perf_counter()
        try:
            # aiormq's own publish (aio-pika's Exchange.publish calls it with wait=True):
            # wait=False releases the channel's lock once the frame is queued, not once it
            # is written, so publishes queued in one loop turn leave in one socket write
            # (gateway/amqp_writes.py). The confirm is awaited all the same, within
            # ``timeout`` (aiormq's deadline covers the wait for it), and a return
            # (mandatory, on_return_raises) or a nack still raises.
            await underlay.basic_publish(
                dramatiq_body(task.id, task.kind, task.payload, attempt),
                routing_key=TASK_QUEUE,
                properties=properties,
                mandatory=True,
                wait=False,
                timeout=self._timeout,
            )
        except Exception as exc:
            raise BrokerUnavailable(
                f"RabbitMQ did not confirm the task ({type(exc).__name__}); it was not accepted. Retry."
            ) from exc
        metrics.publish_confirmed(time.perf_counter() - started)
