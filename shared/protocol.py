"""Wire protocol version 1: HTTP bodies and WebSocket frames (see README, "Protocol").

Client frames are parsed by :func:`parse_client_frame`, which turns every way a frame
can be wrong into an :class:`~shared.errors.InvalidRequest` or
:class:`~shared.errors.ValidationFailed` that still carries the client's ``ref``.
Server frames are built by the ``*_frame`` functions, so every sender agrees on shapes.
Each is built in its v1 shape; :func:`encode_frame` writes it in the socket's form, v1 or
compact (``shared/compact.py``, negotiated as a WebSocket subprotocol).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError

from shared.compact import COMPACT_SUBPROTOCOL, client_frame_from_compact, server_frame_to_compact
from shared.errors import GatewayError, InvalidRequest, UnknownFrameType, ValidationFailed
from shared.events import TaskEvent, TaskStatus
from shared.kinds import field_errors

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "MAX_INTEGER_DIGITS",
    "MAX_RESUME_TASKS",
    "AuthFrame",
    "COMPACT_SUBPROTOCOL",
    "ClientFrame",
    "PingFrame",
    "ResumeFrame",
    "SubmitBody",
    "SubmitFrame",
    "accepted_frame",
    "authenticated_frame",
    "decode_json",
    "encode_frame",
    "error_frame",
    "event_fields",
    "event_frame",
    "frame_ref",
    "parse_client_frame",
    "pong_frame",
    "resumed_frame",
]

MAX_RESUME_TASKS = 1000
# Printable ASCII without spaces or double quotes, the same over HTTP and WebSocket. (Over
# HTTP the header may be a Structured Field string, '"key"': the quotes are not the key.)
IDEMPOTENCY_KEY_PATTERN = r"^[\x21\x23-\x7e]{1,255}$"
IdempotencyKey = Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)]
Ref = Annotated[str, Field(max_length=128)] | StrictInt | None


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: Ref = None


class AuthFrame(_Frame):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=4096)


class SubmitFrame(_Frame):
    type: Literal["submit"]
    idempotency_key: IdempotencyKey
    kind: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]


class ResumeFrame(_Frame):
    type: Literal["resume"]
    tasks: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0)]] = Field(max_length=MAX_RESUME_TASKS)


class PingFrame(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[AuthFrame | SubmitFrame | ResumeFrame | PingFrame, Field(discriminator="type")]
_CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
_KNOWN_TYPES = ("auth", "submit", "resume", "ping")


class SubmitBody(BaseModel):
    """Body of ``POST /v1/tasks``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=64)
    payload: dict[str, Any]


def frame_ref(raw: Any) -> str | int | None:
    """The ``ref`` of a frame, if it has a usable one, so even a bad frame's error echoes it."""
    if isinstance(raw, dict):
        ref = raw.get("ref")
        if isinstance(ref, str) and len(ref) <= 128 or isinstance(ref, int) and not isinstance(ref, bool):
            return ref
    return None


#: Longest integer accepted in any JSON input (HTTP bodies and WebSocket frames). Nothing
#: in the protocol needs more; Python refuses to convert over 4,300 digits anyway, and a
#: long one costs quadratic time to parse.
MAX_INTEGER_DIGITS = 64


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a number has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def decode_json(data: str | bytes, what: str) -> Any:
    """Parse client JSON; anything unparseable (bad syntax or encoding, nesting too deep,
    an integer over ``MAX_INTEGER_DIGITS`` digits) is an ``InvalidRequest`` naming ``what``."""
    try:
        return json.loads(data, parse_int=_bounded_int)
    except RecursionError:
        raise InvalidRequest(f"The {what} is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        reason = str(exc) if "digits" in str(exc) else "it does not parse"
        raise InvalidRequest(f"The {what} is not valid JSON: {reason}.") from None


def encode_frame(frame: dict[str, Any], compact: bool = False) -> str:
    """The one encoding of server frames (JSON without spaces), in v1 or in the compact
    form; a pushed event is encoded once per form, however many sockets get it."""
    return json.dumps(server_frame_to_compact(frame) if compact else frame, separators=(",", ":"))


def parse_client_frame(text: str, compact: bool = False) -> ClientFrame:
    raw = decode_json(text, "frame")
    if compact:
        raw = client_frame_from_compact(raw)
    ref = frame_ref(raw)
    if not isinstance(raw, dict):
        raise _with_ref(InvalidRequest("A frame must be a JSON object with a 'type'."), ref)
    if raw.get("type") not in _KNOWN_TYPES:
        raise _with_ref(
            UnknownFrameType(f"Unknown frame type {raw.get('type')!r}; expected one of {', '.join(_KNOWN_TYPES)}."),
            ref,
        )
    try:
        return _CLIENT_FRAME.validate_python(raw)
    except ValidationError as exc:
        raise _with_ref(
            ValidationFailed(f"The '{raw['type']}' frame is not valid.", details=field_errors(exc)),
            ref,
        ) from None


def _with_ref(err: GatewayError, ref: str | int | None) -> GatewayError:
    err.ref = ref
    return err


def accepted_frame(ref: str | int | None, task_id: str, duplicate: bool, status: TaskStatus) -> dict[str, Any]:
    return {
        "type": "accepted",
        "ref": ref,
        "task_id": task_id,
        "seq": 0,
        "duplicate": duplicate,
        "status": status.value,
    }


def authenticated_frame(ref: str | int | None, principal: str) -> dict[str, Any]:
    return {"type": "authenticated", "ref": ref, "principal": principal}


def pong_frame(ref: str | int | None) -> dict[str, Any]:
    return {"type": "pong", "ref": ref}


def resumed_frame(
    ref: str | int | None, tasks: dict[str, tuple[TaskStatus, int, bool]], unknown: list[str]
) -> dict[str, Any]:
    """``tasks``: task id -> (status, seq, recovered); see ``gateway/ws.py`` for recovered."""
    return {
        "type": "resumed",
        "ref": ref,
        "tasks": {
            task_id: {"status": status.value, "seq": seq, "recovered": recovered}
            for task_id, (status, seq, recovered) in tasks.items()
        },
        "unknown": unknown,
    }


def event_fields(event: TaskEvent) -> dict[str, Any]:
    """An event as the wire shows it, in a frame and in ``GET /v1/tasks/{id}/events``."""
    return {
        "seq": event.seq,
        "status": event.status.value,
        "attempt": event.attempt,
        "result": event.result,
        # Optional reason fields (retry_in_seconds, blocked_by) only when they say something.
        "error": event.error.model_dump(exclude_none=True) if event.error else None,
        "at": event.at,
    }


def event_frame(event: TaskEvent) -> dict[str, Any]:
    return {"type": "event", "task_id": event.task_id, **event_fields(event)}


def error_frame(ref: str | int | None, err: GatewayError) -> dict[str, Any]:
    frame: dict[str, Any] = {"type": "error", "ref": ref, **err.as_dict()}
    retry_after = getattr(err, "retry_after_seconds", None)
    if retry_after is not None:
        frame["retry_after"] = retry_after
    return frame
