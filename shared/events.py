"""Task states and the events that move a task between them.

Each task has an ordered sequence of events numbered by ``seq``. ``seq`` 0 is the
acceptance; attempt ``n`` (1-based) owns ``seq`` 2n-1 (``running``) and 2n (its outcome:
``retrying``, ``succeeded`` or ``failed``). Because the numbers derive from the attempt,
a redelivered message produces the very same numbers, so duplicates are dropped by seq.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FINAL_STATUSES", "ErrorInfo", "TaskEvent", "TaskStatus", "outcome_seq", "running_seq"]


class TaskStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED})


class ErrorInfo(BaseModel):
    """Why a task failed or is being retried, for a person: ``message`` says what to do."""

    model_config = ConfigDict(frozen=True)

    code: str
    message: str
    retry_in_seconds: float | None = None


class TaskEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    seq: int = Field(ge=0)
    status: TaskStatus
    attempt: int = Field(ge=0)
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    at: float = Field(default_factory=time.time)


def running_seq(attempt: int) -> int:
    return 2 * attempt - 1


def outcome_seq(attempt: int) -> int:
    return 2 * attempt
