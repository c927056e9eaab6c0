"""JSON views of stored tasks and events, shared by the HTTP API and the WebSocket."""

from __future__ import annotations

from typing import Any

from shared.events import TaskEvent
from shared.store import TaskRecord

__all__ = ["event_view", "task_view"]


def task_view(task: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "kind": task.kind,
        "status": task.status.value,
        "seq": task.seq,
        "attempts": task.attempts,
        "result": task.result,
        "error": task.error.model_dump() if task.error else None,
        "created_at": task.created_at,
        "updated_at": task.updated_at,
        "history_pruned": task.history_pruned,
    }


def event_view(event: TaskEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "status": event.status.value,
        "attempt": event.attempt,
        "result": event.result,
        "error": event.error.model_dump() if event.error else None,
        "at": event.at,
    }
