"""Anomalies: what a worker sees that no correct run of this system produces (a message
for a task the store does not know, a message that differs from the accepted task, an
effect in Odoo that another change interfered with). Each is logged at ERROR with the
task id and counted per kind, and never applied blindly."""

from __future__ import annotations

import logging
import threading
from collections import Counter

from workers import metrics

__all__ = ["anomaly_counts", "record_anomaly"]

log = logging.getLogger(__name__)
_counts: Counter[str] = Counter()
_lock = threading.Lock()


def record_anomaly(kind: str, task_id: str, detail: str) -> None:
    with _lock:
        _counts[kind] += 1
    metrics.anomaly(kind)
    log.error("anomaly %s task=%s: %s", kind, task_id, detail)


def anomaly_counts() -> dict[str, int]:
    """Counts per kind since this process started."""
    with _lock:
        return dict(_counts)
