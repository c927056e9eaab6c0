"""A worker's events on a real RabbitMQ: ``running`` goes out unconfirmed (``notify``: it is
in the store already), the final event confirmed; both reach the gateways' store queue
alike, and ``notify`` survives its thread's connection being replaced or broken."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pika
import pytest

from odoo_gateway_wire.statuses import TaskStatus
from shared.config import Settings
from shared.events import TaskEvent
from shared.names import STORE_QUEUE
from shared.signing import SIGNATURE_HEADER, EventSigner
from tests.support.services import amqp_url, create_vhost, delete_vhost
from workers.broker import build_broker, declare_event_topology
from workers.events import EventPublisher

TASK = "01a24230-0000-7000-8000-000000000001"
SIGNER = EventSigner(b"k" * 32)


@pytest.fixture
def vhost_url() -> Iterator[str]:
    vhost = create_vhost()
    try:
        yield amqp_url(vhost)
    finally:
        delete_vhost(vhost)


def _drain(url: str) -> list[tuple[Any, bytes]]:
    """Every message on the store queue, in order: (properties, body)."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        got: list[tuple[Any, bytes]] = []
        while True:
            method, properties, body = channel.basic_get(STORE_QUEUE, auto_ack=True)
            if method is None:
                return got
            got.append((properties, body))
    finally:
        connection.close()


def _event(status: TaskStatus, seq: int) -> TaskEvent:
    return TaskEvent(task_id=TASK, seq=seq, status=status, attempt=1)


def test_notified_and_confirmed_events_reach_the_store_queue_alike(vhost_url: str) -> None:
    broker = build_broker(Settings(amqp_url=vhost_url))
    declare_event_topology(broker.channel)
    events = EventPublisher(broker, SIGNER)
    events.notify(_event(TaskStatus.RUNNING, 2))
    events(_event(TaskStatus.SUCCEEDED, 4))  # confirmed: once it returns, both are queued
    broker.close()
    got = _drain(vhost_url)
    assert [json.loads(body)["seq"] for _, body in got] == [2, 4]
    for properties, body in got:
        assert SIGNER.verify(body, properties.headers[SIGNATURE_HEADER])
        assert properties.delivery_mode == 2 and properties.correlation_id == TASK and properties.app_id == "worker"
    assert [properties.type for properties, _ in got] == ["running", "succeeded"]


def test_notify_opens_its_channel_again_after_the_connection_was_replaced_or_broke(vhost_url: str) -> None:
    broker = build_broker(Settings(amqp_url=vhost_url))
    declare_event_topology(broker.channel)
    events = EventPublisher(broker, SIGNER)
    events.notify(_event(TaskStatus.RUNNING, 2))
    del broker.connection  # as the confirmed path does after a failure: a new connection
    events.notify(_event(TaskStatus.RUNNING, 6))
    # Broken under it (closed without the broker knowing): the publish falls back to the
    # confirmed path, which reconnects.
    broker.connection.close()
    events.notify(_event(TaskStatus.RUNNING, 10))
    events(_event(TaskStatus.SUCCEEDED, 12))
    broker.close()
    assert [json.loads(body)["seq"] for _, body in _drain(vhost_url)] == [2, 6, 10, 12]
