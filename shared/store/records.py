"""Plain records the task store reads and writes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.events import ErrorInfo, TaskStatus

__all__ = ["NewTask", "PurgeReport", "TaskRecord"]


@dataclass(frozen=True)
class NewTask:
    id: str
    principal: str
    idempotency_key: str
    fingerprint: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class TaskRecord:
    id: str
    principal: str
    idempotency_key: str | None  # None once the idempotency window has passed
    fingerprint: str
    kind: str
    payload: dict[str, Any] | None  # None once history retention has passed
    status: TaskStatus
    seq: int
    attempts: int
    result: dict[str, Any] | None
    error: ErrorInfo | None
    created_at: float
    updated_at: float
    published_at: float | None
    history_pruned: bool

    @property
    def published(self) -> bool:
        return self.published_at is not None


@dataclass(frozen=True)
class PurgeReport:
    keys_released: int
    histories_pruned: int
