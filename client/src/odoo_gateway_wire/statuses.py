"""Task statuses and how a task's events are numbered.

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

__all__ = ["FINAL_STATUSES", "TaskStatus", "attempt_of_seq", "event_seq"]


class TaskStatus(enum.StrEnum):
    """Where a task is, as the gateway reports it (events, ``accepted``, ``GET /v1/tasks/{id}``)."""

    ACCEPTED = "accepted"
    #: Queued behind an older task on the same Odoo record; ``error.code`` is ``queued``.
    WAITING = "waiting"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """No event follows a final one (unless an operator retries a failed task)."""
        return self in FINAL_STATUSES


FINAL_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED})

_OFFSET_IN_ATTEMPT = {TaskStatus.WAITING: 3, TaskStatus.RUNNING: 2, TaskStatus.RETRYING: 1}


def event_seq(attempt: int, status: TaskStatus) -> int:
    """The seq of ``status`` in attempt ``attempt`` (1-based); 0 for the acceptance."""
    if status is TaskStatus.ACCEPTED:
        return 0
    return 4 * attempt - _OFFSET_IN_ATTEMPT.get(status, 0)


def attempt_of_seq(seq: int) -> int:
    """The attempt an event's seq belongs to (0 for acceptance): attempt n owns 4n-3 .. 4n."""
    return (seq + 3) // 4
