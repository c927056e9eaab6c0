"""Names and arguments of everything the project declares in RabbitMQ.

Names are chosen so an operator in the management console can tell what each one is.
Queue arguments here must equal what Dramatiq declares for the same queue, or RabbitMQ
answers 406 PRECONDITION_FAILED and closes the channel (see README, "RabbitMQ topology").
"""

from __future__ import annotations

import os
import socket
from typing import Any

__all__ = [
    "DEAD_MESSAGE_TTL_MS",
    "EVENTS_EXCHANGE",
    "LIVE_EXCHANGE",
    "STORE_QUEUE",
    "STORE_QUEUE_DEAD",
    "TASK_ACTOR",
    "TASK_ID_HEADER",
    "TASK_QUEUE",
    "TASK_READY_ACTOR",
    "TASK_READY_QUEUE",
    "connection_name",
    "live_queue_name",
    "dramatiq_queue_arguments",
    "store_queue_arguments",
]

#: Dramatiq queue the workers consume; its ``.DQ`` (delayed) and ``.XQ`` (dead) twins are
#: declared by Dramatiq itself.
TASK_QUEUE = "odoo_tasks"
#: The actor that applies one task to Odoo.
TASK_ACTOR = "apply_task"
#: Work already under way: retries, and tasks whose turn on an Odoo record has come. The
#: workers serve it before new tasks, so a hand-over never waits behind the backlog of
#: new submissions (a hot record would otherwise cross the whole queue at every step).
TASK_READY_QUEUE = "odoo_tasks_ready"
#: The same work as ``TASK_ACTOR``, on ``TASK_READY_QUEUE``, at a higher priority.
TASK_READY_ACTOR = "apply_ready_task"
#: Topic exchange the workers publish task events to, routing key ``task.<status>``.
EVENTS_EXCHANGE = "odoo_tasks.events"
#: Durable queue the gateways consume (competing) to store each event once.
STORE_QUEUE = "gateway.task_events"
#: Where events the gateway cannot parse are dead-lettered, for an operator to read.
STORE_QUEUE_DEAD = "gateway.task_events.XQ"
#: Fanout exchange: after an event is stored, it is announced to every gateway instance.
LIVE_EXCHANGE = "gateway.live"
#: AMQP header with the task id, on task messages and task events (the console shows headers).
TASK_ID_HEADER = "x-task-id"

#: Dramatiq's default, overridable by the same environment variable Dramatiq reads.
DEAD_MESSAGE_TTL_MS = int(os.getenv("dramatiq_dead_message_ttl", 86400000 * 7))


def dramatiq_queue_arguments(queue_name: str = TASK_QUEUE) -> dict[str, Any]:
    """Exactly the arguments ``RabbitmqBroker`` declares ``queue_name`` with (no priorities)."""
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": f"{queue_name}.XQ"}


def store_queue_arguments() -> dict[str, Any]:
    return {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": STORE_QUEUE_DEAD}


def connection_name(role: str) -> str:
    """``gateway@host:pid``: what the management console shows in its Connections tab."""
    return f"{role}@{socket.gethostname()}:{os.getpid()}"


def live_queue_name(generation: int) -> str:
    """This gateway process's exclusive queue on ``gateway.live``:
    ``gateway.live.<host>.<pid>.<n>``, n counting the relay's connections. A new name per
    connection: the dead connection's queue can stay locked (RESOURCE_LOCKED) until the
    broker notices it is gone."""
    return f"{LIVE_EXCHANGE}.{socket.gethostname()}.{os.getpid()}.{generation}"
