"""What an operator sees in the RabbitMQ console: task messages and events name their task
(correlation id, header) and their sender (app_id); each gateway's live queue names its
host and process."""

from __future__ import annotations

import asyncio
import json
import os
import socket
from typing import Any

import pika

from gateway.publisher import TaskPublisher
from odoo_gateway_wire.statuses import TaskStatus
from shared.config import Settings
from shared.events import TaskEvent
from shared.names import TASK_ID_HEADER, live_queue_name
from shared.signing import EventSigner
from shared.store import TaskRecord
from workers.events import EventPublisher

TASK = "0f8b2c4e-1234-4abc-9def-0123456789ab"


class _Underlay:
    is_closed = False

    def __init__(self) -> None:
        self.published: list[tuple[bytes, Any]] = []

    async def basic_publish(self, body: bytes, *, properties: Any, **_: Any) -> None:
        self.published.append((body, properties))


class _Channel:
    is_closed = False

    def __init__(self) -> None:
        self.underlay = _Underlay()

    async def get_underlay_channel(self) -> _Underlay:
        return self.underlay


def record() -> TaskRecord:
    return TaskRecord(
        id=TASK,
        principal="demo",
        idempotency_key="k",
        fingerprint="f",
        kind="sale.order.create",
        payload={"customer": "C", "lines": []},
        status=TaskStatus.ACCEPTED,
        seq=0,
        attempts=0,
        result=None,
        error=None,
        created_at=0.0,
        updated_at=0.0,
        published_at=None,
        history_pruned=False,
    )


def test_task_message_names_its_task_and_sender() -> None:
    publisher = TaskPublisher(Settings())
    channel = _Channel()
    publisher._channel = channel  # type: ignore[assignment]
    publisher._underlay = channel.underlay  # type: ignore[assignment]
    asyncio.run(publisher.publish(record()))
    ((raw, properties),) = channel.underlay.published
    assert properties.correlation_id == TASK and properties.headers[TASK_ID_HEADER] == TASK
    assert properties.app_id == "gateway" and properties.message_type == "sale.order.create"
    assert properties.delivery_mode == 2 and properties.content_type == "application/json"
    assert properties.priority == 0  # as aio-pika's Message sets it
    assert properties.message_id != TASK  # unique per publish: aiormq matches returns by it
    body = json.loads(raw)
    assert body["message_id"] == TASK  # Dramatiq's own id is the task id
    assert set(body) == {"queue_name", "actor_name", "args", "kwargs", "options", "message_id", "message_timestamp"}


def test_event_message_names_its_task_and_sender() -> None:
    sent: list[Any] = []

    class _Broker:
        class channel:
            @staticmethod
            def basic_publish(**kwargs: Any) -> None:
                sent.append(kwargs)

    EventPublisher(_Broker(), EventSigner(b"k" * 32))(  # type: ignore[arg-type]
        TaskEvent(task_id=TASK, seq=2, status=TaskStatus.RUNNING, attempt=1)
    )
    properties: pika.BasicProperties = sent[0]["properties"]
    assert properties.correlation_id == TASK and properties.app_id == "worker"
    assert properties.headers[TASK_ID_HEADER] == TASK and properties.message_id == f"{TASK}:2"


def test_live_queue_name_says_whose_it_is() -> None:
    name = live_queue_name(3)
    assert name == f"gateway.live.{socket.gethostname()}.{os.getpid()}.3"
    assert not name.startswith("amq.")  # server-named queues are amq.gen-...
