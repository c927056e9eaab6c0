"""The events that move a task between statuses, as the store and the workers hold them.

Statuses and the numbering of events (``seq``) are the wire protocol's
(``odoo_gateway_wire.statuses``); this module adds the pydantic shapes the server validates.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from odoo_gateway_wire.statuses import TaskStatus

__all__ = ["ErrorInfo", "TaskEvent"]


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
