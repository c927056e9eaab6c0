"""Bounds of the protocol that both sides must agree on (the gateway's other limits,
which only it enforces, are in README "Limits" and ``gateway/limits.py``)."""

from __future__ import annotations

__all__ = [
    "IDEMPOTENCY_KEY_PATTERN",
    "MAX_INTEGER_DIGITS",
    "MAX_KIND_LENGTH",
    "MAX_REF_LENGTH",
    "MAX_RESUME_TASKS",
    "MAX_TASK_ID_LENGTH",
    "MAX_TOKEN_LENGTH",
]

#: Tasks in one ``resume`` frame; a client with more sends several.
MAX_RESUME_TASKS = 1000
#: Printable ASCII without spaces or double quotes, the same over HTTP and WebSocket. (Over
#: HTTP the header may be a Structured Field string, '"key"': the quotes are not the key.)
IDEMPOTENCY_KEY_PATTERN = r"^[\x21\x23-\x7e]{1,255}$"
#: Longest ``ref`` (a string) a client may attach to a frame; the answer echoes it.
MAX_REF_LENGTH = 128
MAX_KIND_LENGTH = 64
MAX_TOKEN_LENGTH = 4096
#: Longest task id a client may name in ``resume`` (the gateway's ids are 36-character UUIDs).
MAX_TASK_ID_LENGTH = 64
#: Longest integer accepted in any JSON input (HTTP bodies and WebSocket frames). Nothing
#: in the protocol needs more; Python refuses to convert over 4,300 digits anyway, and a
#: long one costs quadratic time to parse.
MAX_INTEGER_DIGITS = 64
