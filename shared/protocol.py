"""The gateway's side of protocol v1: parsing and validating what clients send.

The protocol itself (statuses, frames, the compact form, close codes, error codes,
limits) is ``odoo_gateway_wire``, which the Python client imports too. Here is what needs
pydantic: client frames are parsed by :func:`parse_client_frame`, which turns every way a
frame can be wrong into an :class:`~shared.errors.InvalidRequest` or
:class:`~shared.errors.ValidationFailed` that still carries the client's ``ref``; and the
adapters from the server's own types (``TaskEvent``, ``GatewayError``) to wire frames.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, TypeAdapter, ValidationError

from odoo_gateway_wire import frames
from odoo_gateway_wire.compact import client_frame_from_compact
from odoo_gateway_wire.frames import CLIENT_FRAME_TYPES
from odoo_gateway_wire.limits import (
    IDEMPOTENCY_KEY_PATTERN,
    MAX_INTEGER_DIGITS,
    MAX_KIND_LENGTH,
    MAX_REF_LENGTH,
    MAX_RESUME_TASKS,
    MAX_TASK_ID_LENGTH,
    MAX_TOKEN_LENGTH,
)
from shared.errors import GatewayError, InvalidRequest, UnknownFrameType, ValidationFailed
from shared.events import TaskEvent
from shared.kinds import field_errors

__all__ = [
    "AuthFrame",
    "ClientFrame",
    "PingFrame",
    "ResumeFrame",
    "SubmitBody",
    "SubmitFrame",
    "decode_json",
    "error_frame_of",
    "event_fields_of",
    "event_frame_of",
    "frame_ref",
    "parse_client_frame",
]

IdempotencyKey = Annotated[str, Field(pattern=IDEMPOTENCY_KEY_PATTERN)]
Ref = Annotated[str, Field(max_length=MAX_REF_LENGTH)] | StrictInt | None


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ref: Ref = None


class AuthFrame(_Frame):
    type: Literal["auth"]
    token: str = Field(min_length=1, max_length=MAX_TOKEN_LENGTH)


class SubmitFrame(_Frame):
    type: Literal["submit"]
    idempotency_key: IdempotencyKey
    kind: str = Field(min_length=1, max_length=MAX_KIND_LENGTH)
    payload: dict[str, Any]


class ResumeFrame(_Frame):
    type: Literal["resume"]
    tasks: dict[Annotated[str, Field(max_length=MAX_TASK_ID_LENGTH)], Annotated[int, Field(ge=0)]] = Field(
        max_length=MAX_RESUME_TASKS
    )


class PingFrame(_Frame):
    type: Literal["ping"]


ClientFrame = Annotated[AuthFrame | SubmitFrame | ResumeFrame | PingFrame, Field(discriminator="type")]
_CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


class SubmitBody(BaseModel):
    """Body of ``POST /v1/tasks``."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=MAX_KIND_LENGTH)
    payload: dict[str, Any]


def frame_ref(raw: Any) -> str | int | None:
    """The ``ref`` of a frame, if it has a usable one, so even a bad frame's error echoes it."""
    if isinstance(raw, dict):
        ref = raw.get("ref")
        if isinstance(ref, str) and len(ref) <= MAX_REF_LENGTH or isinstance(ref, int) and not isinstance(ref, bool):
            return ref
    return None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INTEGER_DIGITS:
        raise ValueError(f"a number has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


# One decoder for every frame and body: ``json.loads`` with ``parse_int`` builds a new one
# per call (~2 % of the gateway's CPU per reconnect in a resume storm).
_DECODER = json.JSONDecoder(parse_int=_bounded_int)


def decode_json(data: str | bytes, what: str) -> Any:
    """Parse client JSON; anything unparseable (bad syntax or encoding, nesting too deep,
    an integer over ``MAX_INTEGER_DIGITS`` digits) is an ``InvalidRequest`` naming ``what``."""
    try:
        if not isinstance(data, str):  # as json.loads takes bytes: UTF-8, -16 or -32
            data = data.decode(json.detect_encoding(data), "surrogatepass")
        if data.startswith("\ufeff"):
            raise ValueError("a byte order mark")  # as json.loads refuses one in a str
        return _DECODER.decode(data)
    except RecursionError:
        raise InvalidRequest(f"The {what} is not valid JSON: it is nested too deeply.") from None
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors too
        reason = str(exc) if "digits" in str(exc) else "it does not parse"
        raise InvalidRequest(f"The {what} is not valid JSON: {reason}.") from None


def parse_client_frame(text: str, compact: bool = False) -> ClientFrame:
    raw = decode_json(text, "frame")
    if compact:
        raw = client_frame_from_compact(raw)
    ref = frame_ref(raw)
    if not isinstance(raw, dict):
        raise _with_ref(InvalidRequest("A frame must be a JSON object with a 'type'."), ref)
    if raw.get("type") not in CLIENT_FRAME_TYPES:
        raise _with_ref(
            UnknownFrameType(
                f"Unknown frame type {raw.get('type')!r}; expected one of {', '.join(CLIENT_FRAME_TYPES)}."
            ),
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


def event_fields_of(event: TaskEvent) -> dict[str, Any]:
    """A stored event as the wire shows it (optional reason fields, such as
    ``retry_in_seconds`` and ``blocked_by``, only when they say something)."""
    error = event.error.model_dump(exclude_none=True) if event.error else None
    return frames.event_fields(event.seq, event.status, event.attempt, event.result, error, event.at)


def event_frame_of(event: TaskEvent) -> dict[str, Any]:
    return frames.event_frame(event.task_id, event_fields_of(event))


def error_frame_of(ref: str | int | None, err: GatewayError) -> dict[str, Any]:
    retry_after = getattr(err, "retry_after_seconds", None)
    return frames.error_frame(ref, err.code, err.message, err.details, retry_after)
