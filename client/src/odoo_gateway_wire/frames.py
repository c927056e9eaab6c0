"""Every WebSocket frame of protocol v1, built here and nowhere else (README, "Protocol").

Frames are built in their v1 shape; :func:`encode_frame` writes a server frame in the
socket's form (v1, or compact: ``compact.py``) and :func:`encode_client_frame` does the
same for a client's. Parsing and validating client frames is the gateway's
(``shared/protocol.py``: it needs pydantic, which a client does not).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from odoo_gateway_wire.compact import client_frame_to_compact, server_frame_to_compact
from odoo_gateway_wire.statuses import TaskStatus

__all__ = [
    "CLIENT_FRAME_TYPES",
    "SERVER_FRAME_TYPES",
    "Ref",
    "accepted_frame",
    "auth_frame",
    "authenticated_frame",
    "encode_client_frame",
    "encode_frame",
    "error_frame",
    "event_fields",
    "event_frame",
    "ping_frame",
    "pong_frame",
    "resume_frame",
    "resumed_frame",
    "submit_frame",
]

#: What a client may send, and what the gateway sends (the order is the README's).
CLIENT_FRAME_TYPES = ("auth", "submit", "resume", "ping")
SERVER_FRAME_TYPES = ("authenticated", "accepted", "event", "resumed", "error", "pong")

#: A client's handle on a frame, echoed in the answer to it.
Ref = str | int | None


def _json(frame: Mapping[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"))


def encode_frame(frame: dict[str, Any], compact: bool = False) -> str:
    """The one encoding of server frames (JSON without spaces), in v1 or in the compact
    form; a pushed event is encoded once per form, however many sockets get it."""
    return _json(server_frame_to_compact(frame) if compact else frame)


def encode_client_frame(frame: dict[str, Any], compact: bool = False) -> str:
    return _json(client_frame_to_compact(frame) if compact else frame)


# -- client -> gateway -----------------------------------------------------------------


def auth_frame(token: str, ref: Ref = None) -> dict[str, Any]:
    return {"type": "auth", "ref": ref, "token": token}


def submit_frame(idempotency_key: str, kind: str, payload: Any, ref: Ref = None) -> dict[str, Any]:
    return {"type": "submit", "ref": ref, "idempotency_key": idempotency_key, "kind": kind, "payload": payload}


def resume_frame(tasks: Mapping[str, int], ref: Ref = None) -> dict[str, Any]:
    """``tasks``: task id -> the last seq the client has (at most ``MAX_RESUME_TASKS``)."""
    return {"type": "resume", "ref": ref, "tasks": dict(tasks)}


def ping_frame(ref: Ref = None) -> dict[str, Any]:
    return {"type": "ping", "ref": ref}


# -- gateway -> client -----------------------------------------------------------------


def accepted_frame(ref: Ref, task_id: str, duplicate: bool, status: TaskStatus) -> dict[str, Any]:
    return {
        "type": "accepted",
        "ref": ref,
        "task_id": task_id,
        "seq": 0,
        "duplicate": duplicate,
        "status": status.value,
    }


def authenticated_frame(ref: Ref, principal: str) -> dict[str, Any]:
    return {"type": "authenticated", "ref": ref, "principal": principal}


def pong_frame(ref: Ref) -> dict[str, Any]:
    return {"type": "pong", "ref": ref}


def resumed_frame(ref: Ref, tasks: Mapping[str, tuple[TaskStatus, int, bool]], unknown: list[str]) -> dict[str, Any]:
    """``tasks``: task id -> (status, seq, recovered); ``recovered`` is false when events
    the client asked for were pruned by retention (it then gets the current state only)."""
    return {
        "type": "resumed",
        "ref": ref,
        "tasks": {
            task_id: {"status": status.value, "seq": seq, "recovered": recovered}
            for task_id, (status, seq, recovered) in tasks.items()
        },
        "unknown": unknown,
    }


def event_fields(
    seq: int,
    status: TaskStatus,
    attempt: int,
    result: dict[str, Any] | None,
    error: dict[str, Any] | None,
    at: float,
) -> dict[str, Any]:
    """An event as the wire shows it, in a frame and in ``GET /v1/tasks/{id}/events``."""
    return {"seq": seq, "status": status.value, "attempt": attempt, "result": result, "error": error, "at": at}


def event_frame(task_id: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "event", "task_id": task_id, **fields}


def error_frame(
    ref: Ref, code: str, message: str, details: Any = None, retry_after: int | None = None
) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "ref": ref, "code": code, "message": message, "details": details}
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return frame
