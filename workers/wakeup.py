"""Waking tasks queued behind another on the same Odoo record.

A parked task has no message anywhere: the store holds it. The worker that finishes its
blocker sends its message again at once (:func:`send_waiters`); as a safety net, every
worker process runs :class:`WakeSweeper`, a thread that asks the store every
``TASK_WAKE_SWEEP_SECONDS`` for parked tasks whose turn has come (their waker died, or
their blocker was a submission never acknowledged) and sends those.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import dramatiq

from shared.store import Waiter

__all__ = ["WakeSweeper", "send_waiters"]

log = logging.getLogger(__name__)


def send_waiters(actor: dramatiq.Actor, waiters: list[Waiter]) -> None:  # type: ignore[type-arg]
    """Enqueue each woken task as its actor's message, keeping its attempt number (the
    Retries middleware counts from ``retries``), so its event numbers stay in order."""
    for waiter in waiters:
        message = actor.message_with_options(
            args=(waiter.task_id, waiter.kind, waiter.payload), retries=max(0, waiter.attempt - 1)
        )
        actor.broker.enqueue(message)
        log.info("task %s woken (its turn has come)", waiter.task_id)


class WakeSweeper(dramatiq.Middleware):
    def __init__(self, sweep: Callable[[], int], interval: float) -> None:
        self._sweep = sweep
        self._interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._thread = threading.Thread(target=self._loop, name="wake-sweeper", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sweep()
            except Exception as exc:  # the store or broker is down: try again next round
                log.warning("wake sweep failed (%r); retrying in %.1fs", exc, self._interval)
