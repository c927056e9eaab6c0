"""Dramatiq actors. Start workers with ``dramatiq workers.actors`` (see README).

The actor is thin: it reads the attempt number from the message and hands over to
:class:`~workers.runner.TaskRunner`. Everything a process needs is built lazily on first
use, because Dramatiq imports this module in each forked worker process.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage

from shared.config import Settings
from shared.logs import configure_logging
from shared.names import TASK_ACTOR, TASK_QUEUE, TASK_READY_ACTOR, TASK_READY_QUEUE, connection_name
from shared.signing import EventSigner
from shared.store import open_store
from workers.broker import build_broker
from workers.events import EventPublisher
from workers.metrics import prometheus_middleware
from workers.odoo_api import check_odoo_settings, open_odoo
from workers.runner import RetryLater, TaskAbandoned, TaskAttempt, TaskRunner
from workers.wakeup import WakeSweeper, send_waiters

__all__ = ["apply_ready_task", "apply_task", "broker"]

settings = Settings.from_env()
configure_logging(settings.log_level, settings.log_format)
# Refused at start, not at the first task: a worker whose events no gateway would trust.
signer = EventSigner.from_settings(settings)
check_odoo_settings(settings)
broker = build_broker(settings)
# Before anything imports prometheus-client (see workers/metrics.py).
_prometheus = prometheus_middleware(settings)
if _prometheus is not None:
    broker.add_middleware(_prometheus)
dramatiq.set_broker(broker)
log = logging.getLogger(__name__)


@functools.cache
def _runner() -> TaskRunner:
    return TaskRunner(
        settings,
        open_store(settings.database_url),
        open_odoo(settings),
        EventPublisher(broker, signer),
        worker_id=connection_name("worker"),
        wake=lambda waiters: send_waiters(apply_ready_task, waiters),
    )


broker.add_middleware(WakeSweeper(lambda: _runner().sweep(), settings.wake_sweep_seconds))


def _apply(task_id: str, kind: str, payload: dict[str, Any]) -> None:
    message = CurrentMessage.get_current_message()
    retries = int(message.options.get("retries", 0)) if message is not None else 0
    attempt = TaskAttempt(
        task_id=task_id,
        kind=kind,
        payload=payload,
        attempt=retries + 1,
        redelivered=bool(getattr(message, "redelivered", False)),
    )
    if attempt.redelivered:
        log.info("task %s redelivered (attempt %d)", task_id, attempt.attempt)
    try:
        _runner().run(attempt)
    except RetryLater as later:
        # The retry goes to the ready queue, served before new tasks: a task that holds an
        # Odoo record while it waits for its retry holds up every task queued behind it.
        # If this send fails, the exception makes Dramatiq retry the message itself.
        apply_ready_task.send_with_options(
            args=(task_id, kind, payload), delay=int(later.delay * 1000), retries=retries + 1
        )
        log.info("task %s retry %d queued in %.1fs", task_id, attempt.attempt + 1, later.delay)


_ACTOR_OPTIONS: dict[str, Any] = {
    # Our runner decides when to give up (TASK_MAX_ATTEMPTS); this is a safety net for
    # failures outside it (e.g. RabbitMQ down while publishing an event).
    "max_retries": settings.max_attempts + 20,
    "min_backoff": 1000,
    "max_backoff": int(settings.max_backoff * 1000),
    "throws": (TaskAbandoned,),
    # Under RabbitMQ's consumer_timeout (30 min by default), see deploy/rabbitmq.conf.
    "time_limit": 20 * 60 * 1000,
}


@dramatiq.actor(actor_name=TASK_ACTOR, queue_name=TASK_QUEUE, priority=10, **_ACTOR_OPTIONS)
def apply_task(task_id: str, kind: str, payload: dict[str, Any]) -> None:
    """A new task, as the gateway published it."""
    _apply(task_id, kind, payload)


# Lower is served first: of the messages a worker holds, retries and woken tasks go first.
@dramatiq.actor(actor_name=TASK_READY_ACTOR, queue_name=TASK_READY_QUEUE, priority=0, **_ACTOR_OPTIONS)
def apply_ready_task(task_id: str, kind: str, payload: dict[str, Any]) -> None:
    """A retry, or a task whose turn on its Odoo records has come."""
    _apply(task_id, kind, payload)
