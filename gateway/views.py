"""The JSON view of a stored task, as `GET /v1/tasks/{id}` and the 202 answer show it."""

from __future__ import annotations

from typing import Any

from shared.store import TaskRecord

__all__ = ["task_view"]


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
