"""The compact form of protocol v1 (subprotocol ``gateway.v1c``): the same frames, fewer bytes.

A client that offers :data:`COMPACT_SUBPROTOCOL` in ``Sec-WebSocket-Protocol`` gets it;
every other client gets v1 unchanged. Frames are still JSON objects, translated to and from
their v1 shape here and nowhere else, so the server builds and validates one shape only:

- short keys and types (the tables below are the whole vocabulary);
- no ``null`` fields and no field whose value the client already knows: ``seq: 0``,
  ``status: "accepted"`` and ``duplicate: false`` in ``accepted``; ``attempt`` in
  ``event`` (seq ``4n-3`` .. ``4n`` belongs to attempt ``n``); ``at`` (read it over HTTP);
  ``recovered: true`` and an empty ``unknown`` in ``resumed``;
- results trimmed: top-level members that are ``null``, ``[]`` or ``{}`` are left out
  (absent means empty);
- statuses as one letter (:data:`STATUS_CODES`);
- task ids the server sends (``i``, the keys of ``resumed.ts``) as the UUID's 16 bytes in
  unpadded base64url: 22 characters instead of 36. Ids a client sends stay as they are
  (and ``u``, which echoes them).

No I/O here, and no server dependency: the Python client imports it as it is.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from odoo_gateway_wire.statuses import TaskStatus, attempt_of_seq

__all__ = [
    "CLIENT_KEYS",
    "CLIENT_TYPES",
    "COMPACT_SUBPROTOCOL",
    "SERVER_KEYS",
    "SERVER_TYPES",
    "STATUS_CODES",
    "long_task_id",
    "short_task_id",
    "client_frame_from_compact",
    "client_frame_to_compact",
    "server_frame_from_compact",
    "server_frame_to_compact",
]

COMPACT_SUBPROTOCOL = "gateway.v1c"

#: Status -> its one-letter code in compact frames.
STATUS_CODES = {
    TaskStatus.ACCEPTED.value: "a",
    TaskStatus.WAITING.value: "w",
    TaskStatus.RUNNING.value: "r",
    TaskStatus.RETRYING.value: "y",
    TaskStatus.SUCCEEDED.value: "s",
    TaskStatus.FAILED.value: "f",
}
_STATUS_NAMES = {code: name for name, code in STATUS_CODES.items()}

# Frame types, by direction (a letter means one thing per direction). The browser module
# (gateway/static/gateway-client.js, COMPACT_WIRE) has a copy, checked by a unit test.
CLIENT_TYPES = {"auth": "a", "submit": "s", "resume": "r", "ping": "p"}
SERVER_TYPES = {"authenticated": "a", "accepted": "k", "event": "e", "resumed": "r", "error": "x", "pong": "p"}
# Field names (v1 -> compact). ``t`` is the type, ``r`` the ref everywhere.
CLIENT_KEYS = {
    "type": "t",
    "ref": "r",
    "token": "tk",
    "idempotency_key": "k",
    "kind": "n",
    "payload": "p",
    "tasks": "ts",
}
SERVER_KEYS = {
    "type": "t",
    "ref": "r",
    "principal": "pr",
    "task_id": "i",
    "seq": "q",
    "status": "s",
    "duplicate": "d",
    "result": "v",
    "error": "e",
    "tasks": "ts",
    "unknown": "u",
    "recovered": "rc",
    "code": "c",
    "message": "m",
    "details": "dt",
    "retry_after": "w",
}
_CLIENT_TYPE_NAMES = {v: k for k, v in CLIENT_TYPES.items()}
_SERVER_TYPE_NAMES = {v: k for k, v in SERVER_TYPES.items()}
_CLIENT_KEY_NAMES = {v: k for k, v in CLIENT_KEYS.items()}
_SERVER_KEY_NAMES = {v: k for k, v in SERVER_KEYS.items()}
# What a compact server frame leaves out because the client knows it.
_KNOWN = {"seq": 0, "status": "accepted", "duplicate": False, "recovered": True}
_DROPPED = ("attempt", "at")


def short_task_id(task_id: str) -> str:
    """A task id in its compact spelling; anything not a canonical UUID is left as it is."""
    try:
        parsed = uuid.UUID(task_id)
    except ValueError:
        return task_id
    if str(parsed) != task_id:
        return task_id
    return base64.urlsafe_b64encode(parsed.bytes).rstrip(b"=").decode()


def long_task_id(short: str) -> str:
    """The canonical UUID spelling of a compact task id (the inverse of :func:`short_task_id`)."""
    if len(short) != 22:
        return short
    try:
        return str(uuid.UUID(bytes=base64.urlsafe_b64decode(short + "==")))
    except (ValueError, binascii.Error):
        return short


def _status_code(status: Any) -> Any:
    return STATUS_CODES.get(status, status)  # an unknown status goes as it is: not final yet


def _status_name(code: Any) -> Any:
    return _STATUS_NAMES.get(code, code)


def _trimmed(result: Any) -> Any:
    if not isinstance(result, dict):
        return result
    return {k: v for k, v in result.items() if v is not None and v != [] and v != {}}


# -- client frames ---------------------------------------------------------------------


def client_frame_to_compact(frame: dict[str, Any]) -> dict[str, Any]:
    """A v1 client frame as a compact client sends it."""
    out: dict[str, Any] = {}
    for key, value in frame.items():
        if value is None:
            continue
        if key == "type":
            value = CLIENT_TYPES.get(value, value)
        out[CLIENT_KEYS.get(key, key)] = value
    return out


def client_frame_from_compact(raw: Any) -> Any:
    """A compact client frame in its v1 shape, for v1's validation (which then names an
    unknown key or type as it would in v1). Anything not an object is left to it too."""
    if not isinstance(raw, dict):
        return raw
    out = {_CLIENT_KEY_NAMES.get(key, key): value for key, value in raw.items()}
    if isinstance(out.get("type"), str):  # anything else is v1 validation's to refuse
        out["type"] = _CLIENT_TYPE_NAMES.get(out["type"], out["type"])
    return out


# -- server frames ---------------------------------------------------------------------


def server_frame_to_compact(frame: dict[str, Any]) -> dict[str, Any]:
    """A v1 server frame (as ``frames`` builds it) in compact form."""
    out: dict[str, Any] = {}
    kind = frame.get("type")
    for key, value in frame.items():
        if value is None or key in _DROPPED or _KNOWN.get(key, ...) == value and type(value) is type(_KNOWN[key]):
            continue
        if key == "type":
            value = SERVER_TYPES.get(value, value)
        elif key == "status":
            value = _status_code(value)
        elif key == "result":
            value = _trimmed(value)
        elif key == "task_id":
            value = short_task_id(value)
        elif key == "tasks" and kind == "resumed":
            value = {short_task_id(task_id): server_frame_to_compact(info) for task_id, info in value.items()}
        elif key == "unknown" and not value:
            continue
        out[SERVER_KEYS.get(key, key)] = value
    return out


def server_frame_from_compact(raw: dict[str, Any]) -> dict[str, Any]:
    """A compact server frame in its v1 shape, with what was left out filled back in
    (``at`` stays absent; a trimmed result stays trimmed)."""
    frame: dict[str, Any] = {_SERVER_KEY_NAMES.get(key, key): value for key, value in raw.items()}
    kind = frame["type"] = _SERVER_TYPE_NAMES.get(str(frame.get("type")), frame.get("type"))
    if "status" in frame:
        frame["status"] = _status_name(frame["status"])
    if isinstance(frame.get("task_id"), str):
        frame["task_id"] = long_task_id(frame["task_id"])
    if kind != "event":  # every other server frame answers a client frame
        frame.setdefault("ref", None)
    if kind == "accepted":
        for key in ("seq", "status", "duplicate"):
            frame.setdefault(key, _KNOWN[key])
    elif kind == "event":
        frame.setdefault("seq", _KNOWN["seq"])
        frame.setdefault("status", _KNOWN["status"])
        frame.setdefault("result", None)
        frame.setdefault("error", None)
        frame["attempt"] = attempt_of_seq(int(frame["seq"]))
    elif kind == "resumed":
        tasks = frame.get("tasks") or {}
        frame["tasks"] = {long_task_id(task_id): _resumed_task(info) for task_id, info in tasks.items()}
        frame.setdefault("unknown", [])
    elif kind == "error":
        frame.setdefault("details", None)
    return frame


def _resumed_task(info: dict[str, Any]) -> dict[str, Any]:
    expanded = {_SERVER_KEY_NAMES.get(key, key): value for key, value in info.items()}
    expanded["status"] = _status_name(expanded.get("status", "accepted"))
    expanded.setdefault("seq", 0)
    expanded.setdefault("recovered", True)
    return expanded
