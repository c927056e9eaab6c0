"""Task states and the events that move a task between them.

Each task has an ordered sequence of events numbered by ``seq``. ``seq`` 0 is the
acceptance; attempt ``n`` (1-based) owns four numbers: 4n-3 ``waiting`` (queued behind an
older task on the same Odoo record; waiting is not an attempt, so it happens before the
attempt starts), 4n-2 ``running``, 4n-1 ``retrying``, 4n ``succeeded`` or ``failed``.
Because the numbers derive from the attempt and the kind of outcome, a redelivered
message produces the very same numbers for the same events, so duplicates are dropped
by seq; and a redelivered attempt that ends differently (the first copy said
``retrying`` and died before its retry was queued; the redelivery found the effect and
says ``succeeded``) gets a higher number, so it is not mistaken for a duplicate.
"""

from __future__ import annotations

import enum
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["FINAL_STATUSES", "ErrorInfo", "TaskEvent", "TaskStatus", "event_seq"]


class TaskStatus(enum.StrEnum):
    ACCEPTED = "accepted"
    #: Queued behind an older task on the same Odoo record; ``error.code`` is ``queued``.
    WAITING = "waiting"
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
    #: With ``waiting``: the older task this one is queued behind.
    blocked_by: str | None = None


class TaskEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    task_id: str
    seq: int = Field(ge=0)
    status: TaskStatus
    attempt: int = Field(ge=0)
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    at: float = Field(default_factory=time.time)


def event_seq(attempt: int, status: TaskStatus) -> int:
    """The seq of ``status`` in attempt ``attempt`` (1-based); 0 for the acceptance."""
    if status is TaskStatus.ACCEPTED:
        return 0
    offset = {TaskStatus.WAITING: 3, TaskStatus.RUNNING: 2, TaskStatus.RETRYING: 1}.get(status, 0)
    return 4 * attempt - offset
