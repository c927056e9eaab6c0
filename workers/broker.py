"""The Dramatiq broker: RabbitMQ with publisher confirms, named connections, and the
event topology declared when a worker boots."""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
import pika
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from dramatiq.middleware import CurrentMessage

from shared.config import Settings
from shared.names import (
    EVENTS_EXCHANGE,
    STORE_QUEUE,
    STORE_QUEUE_DEAD,
    connection_name,
    store_queue_arguments,
)

__all__ = ["EventTopology", "build_broker", "declare_event_topology"]

log = logging.getLogger(__name__)


def declare_event_topology(channel: Any) -> None:
    """The events exchange and the gateways' durable store queue, declared by workers
    too, so events published before any gateway ever started are kept, not dropped."""
    channel.exchange_declare(EVENTS_EXCHANGE, exchange_type="topic", durable=True)
    channel.queue_declare(STORE_QUEUE_DEAD, durable=True)
    channel.queue_declare(STORE_QUEUE, durable=True, arguments=store_queue_arguments())
    channel.queue_bind(STORE_QUEUE, EVENTS_EXCHANGE, routing_key="task.#")


class EventTopology(dramatiq.Middleware):
    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        assert isinstance(broker, RabbitmqBroker)
        connection = pika.BlockingConnection(broker.parameters)
        try:
            declare_event_topology(connection.channel())
        finally:
            connection.close()
        log.info("event topology declared exchange=%s queue=%s", EVENTS_EXCHANGE, STORE_QUEUE)


def _parameters(settings: Settings) -> dict[str, Any]:
    url = pika.URLParameters(settings.amqp_url)
    return {
        "host": url.host,
        "port": url.port,
        "virtual_host": url.virtual_host,
        "credentials": url.credentials,
        "ssl_options": url.ssl_options,
        # Short heartbeats: a dead broker is noticed in ~30 s, not ~3 min.
        "heartbeat": 15,
        "blocked_connection_timeout": 60,
        "connection_attempts": 3,
        "retry_delay": 1,
        "client_properties": {"connection_name": connection_name("worker")},
    }


def build_broker(settings: Settings) -> RabbitmqBroker:
    broker = RabbitmqBroker(confirm_delivery=True, parameters=[_parameters(settings)])
    broker.add_middleware(CurrentMessage())
    broker.add_middleware(EventTopology())
    return broker
