"""Where a submission stands, as the client sees it: the gateway's task statuses
(``odoo_gateway_wire.statuses``) plus three that only the client knows."""

from __future__ import annotations

import enum

from odoo_gateway_wire.statuses import FINAL_STATUSES, TaskStatus

__all__ = ["FINAL_STATUSES", "SETTLED_STATUSES", "HandleStatus", "LocalStatus", "TaskStatus", "handle_status"]


class LocalStatus(enum.StrEnum):
    #: In the outbox, not yet acknowledged by the gateway: resent with the same key until it is.
    PENDING = "pending"
    #: The gateway refused the submission (a client error); resending it would not help.
    REJECTED = "rejected"
    #: The gateway does not know the task id (or it belongs to another principal).
    UNKNOWN = "unknown"


HandleStatus = TaskStatus | LocalStatus

#: No more network work for these: they only wait for the application to see them.
SETTLED_STATUSES: frozenset[HandleStatus] = frozenset({*FINAL_STATUSES, LocalStatus.REJECTED, LocalStatus.UNKNOWN})


def handle_status(text: str) -> HandleStatus:
    """The status a stored or received string names; ValueError for one this client does not know."""
    try:
        return TaskStatus(text)
    except ValueError:
        return LocalStatus(text)
