"""Worker metrics for Prometheus: Dramatiq's own middleware (messages processed, errors,
retries, dead-lettered, in progress, durations per queue and actor) plus the task outcomes
only this project knows, all served on ``WORKER_METRICS_HOST:WORKER_METRICS_PORT``.

Dramatiq runs several worker processes and serves their metrics from one extra process
(a "fork"), so prometheus-client runs in multiprocess mode: each process writes its values
to files in one directory, read at every scrape. That directory must be known before
prometheus-client is first imported in a process, which is why :func:`prometheus_middleware`
sets it while ``workers.actors`` is imported, and why the fork here (:func:`serve_metrics`)
reads the settings itself: Dramatiq's own exposition fork would read Dramatiq's
environment variables in a process that never imported our code.

The rest of the workers report through :func:`task_event`, :func:`task_finished` and
:func:`anomaly`, which do nothing while metrics are off (``WORKER_METRICS_PORT=0``).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import dramatiq

from shared.config import Settings

__all__ = ["anomaly", "metrics_dir", "prometheus_middleware", "serve_metrics", "task_event", "task_finished"]

_lock = threading.Lock()
_counters: dict[str, Any] = {}
_enabled = False
_PID_IN_FILE = re.compile(r"_(\d+)\.db$")


def metrics_dir(settings: Settings) -> str:
    return settings.worker_metrics_dir or str(
        Path(tempfile.gettempdir()) / f"odoo-gateway-worker-metrics-{settings.worker_metrics_port}"
    )


def _forget_dead_processes(directory: Path) -> None:
    """Files of processes that no longer run (an earlier start) would be summed forever."""
    for path in directory.glob("*.db"):
        found = _PID_IN_FILE.search(path.name)
        if found is not None and not Path(f"/proc/{found.group(1)}").exists():
            path.unlink(missing_ok=True)


def prometheus_middleware(settings: Settings) -> dramatiq.Middleware | None:
    """Dramatiq's Prometheus middleware, set up for our directory and exposition fork; None
    when ``WORKER_METRICS_PORT`` is 0."""
    global _enabled
    if not settings.worker_metrics_port:
        return None
    directory = Path(metrics_dir(settings))
    directory.mkdir(parents=True, exist_ok=True)
    _forget_dead_processes(directory)
    # Read by Dramatiq's middleware module at import and by prometheus-client at import.
    os.environ["dramatiq_prom_db"] = str(directory)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from dramatiq.middleware.prometheus import Prometheus

    class _Prometheus(Prometheus):
        @property
        def forks(self) -> list[Any]:
            return [serve_metrics]

    _enabled = True
    middleware: dramatiq.Middleware = _Prometheus()
    return middleware


def _counter(name: str, documentation: str, labels: list[str]) -> Any:
    with _lock:
        counter = _counters.get(name)
        if counter is None:
            from prometheus_client import Counter

            counter = _counters[name] = Counter(name, documentation, labels)
        return counter


def task_event(status: str) -> None:
    """A task event was published (a final one again after a redelivery counts again)."""
    if _enabled:
        _counter("worker_task_events_total", "Task events published, by status.", ["status"]).labels(status).inc()


def task_finished(kind: str, status: str) -> None:
    """A task reached its final state (stored once)."""
    if _enabled:
        _counter(
            "worker_tasks_finished_total", "Tasks that ended, by kind and final status.", ["kind", "status"]
        ).labels(kind, status).inc()


def anomaly(kind: str) -> None:
    if _enabled:
        _counter("worker_anomalies_total", "Anomalies seen by workers, by kind (README).", ["kind"]).labels(kind).inc()


def serve_metrics() -> int:
    """The exposition server, run by Dramatiq as a fork process: every worker process's
    values, summed, on ``WORKER_METRICS_HOST:WORKER_METRICS_PORT``."""
    settings = Settings.from_env()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir(settings)
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    from prometheus_client import CollectorRegistry, make_wsgi_app
    from prometheus_client.multiprocess import MultiProcessCollector

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # every scrape is not news
            pass

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    address = (settings.worker_metrics_host, settings.worker_metrics_port)
    try:
        server = make_server(*address, make_wsgi_app(registry), handler_class=_Quiet)
    except OSError as exc:  # the workers run on; only their metrics are missing
        logging.getLogger(__name__).error("worker metrics not served on %s:%d: %s", *address, exc)
        return 1
    server.serve_forever()
    return 0
