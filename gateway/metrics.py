"""The gateway's Prometheus metrics: every metric is defined here, and the rest of the
gateway reports through the small functions below (the registry, submissions, the store,
the relay and the WebSocket endpoint call them; none of them touches prometheus-client).

Several processes (``GATEWAY_WORKERS`` > 1) share one port, so a scrape reaches one of
them at random. With ``PROMETHEUS_MULTIPROC_DIR`` set (an empty directory, emptied again by
``python -m gateway`` at start), every process writes its values there and ``/metrics``
answers the sum over all of them; without it, ``/metrics`` shows the process that answered.
Gauges are summed over live processes only (``livesum``).
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess

from shared.version import VERSION

__all__ = [
    "anomaly",
    "event_relayed",
    "exposition",
    "frames_pushed",
    "mark_process_dead",
    "publish_confirmed",
    "socket_closed",
    "socket_detached",
    "socket_opened",
    "store_call",
    "submission",
    "watches_changed",
]

_LATENCY = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_RELAY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

BUILD = Gauge("gateway_build_info", "The running version (value 1).", ["version"], multiprocess_mode="max")
SOCKETS = Gauge("gateway_ws_connections", "Authenticated WebSocket sessions open now.", multiprocess_mode="livesum")
WATCHES = Gauge("gateway_ws_watches", "Tasks watched by open sockets now.", multiprocess_mode="livesum")
CLOSES = Counter("gateway_ws_closes_total", "WebSocket connections ended, by the close code.", ["code"])
SUBMISSIONS = Counter(
    "gateway_submissions_total",
    "Submissions answered, by transport and outcome (accepted, duplicate, or the error code).",
    ["transport", "outcome"],
)
PUBLISH_CONFIRM = Histogram(
    "gateway_publish_confirm_seconds", "From publish to RabbitMQ's confirm of a task message.", buckets=_LATENCY
)
STORE = Histogram("gateway_store_seconds", "Task store calls, by operation.", ["operation"], buckets=_LATENCY)
RELAY = Histogram(
    "gateway_event_relay_seconds",
    "From the worker's event timestamp to the event stored by the gateway (clocks of two hosts).",
    buckets=_RELAY,
)
EVENTS = Counter("gateway_events_relayed_total", "Task events stored and announced, by status.", ["status"])
FRAMES = Counter("gateway_event_frames_total", "Event frames queued to sockets (one per watching socket).")
ANOMALIES = Counter(
    "gateway_anomalies_total",
    "What no correct peer produces: forged (unsigned or badly signed) or unreadable events.",
    ["kind"],
)

BUILD.labels(VERSION).set(1)


def socket_opened() -> None:
    SOCKETS.inc()


def socket_detached(watches: int) -> None:
    SOCKETS.dec()
    WATCHES.dec(watches)


def socket_closed(code: int) -> None:
    CLOSES.labels(str(code)).inc()


def watches_changed(delta: int) -> None:
    WATCHES.inc(delta)


def submission(transport: str, outcome: str) -> None:
    SUBMISSIONS.labels(transport, outcome).inc()


def publish_confirmed(seconds: float) -> None:
    PUBLISH_CONFIRM.observe(seconds)


def store_call(operation: str, seconds: float) -> None:
    STORE.labels(operation).observe(seconds)


def event_relayed(status: str, age_seconds: float) -> None:
    EVENTS.labels(status).inc()
    RELAY.observe(max(0.0, age_seconds))


def frames_pushed(count: int) -> None:
    FRAMES.inc(count)


def anomaly(kind: str) -> None:
    ANOMALIES.labels(kind).inc()


def _multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> tuple[bytes, str]:
    """The text ``/metrics`` answers, and its content type."""
    if _multiprocess_dir() is None:
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    registry = CollectorRegistry()
    _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return generate_latest(registry), CONTENT_TYPE_LATEST


def mark_process_dead() -> None:
    """Drop this process's live gauges from the shared directory (at shutdown)."""
    path = _multiprocess_dir()
    if path is not None:
        _multiprocess.mark_process_dead(os.getpid(), path)  # type: ignore[no-untyped-call]
