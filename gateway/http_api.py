"""HTTP API v1: submit, poll a task, read its events, health, OpenAPI."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from gateway import metrics
from gateway.auth import bearer_token
from gateway.openapi import OPENAPI
from gateway.state import GatewayState, gateway_state
from gateway.views import task_view
from odoo_gateway_wire.limits import IDEMPOTENCY_KEY_PATTERN
from shared.errors import (
    AuthenticationFailed,
    GatewayError,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    QuotaExceeded,
    RequestTimeout,
    Unavailable,
    ValidationFailed,
)
from shared.kinds import field_errors
from shared.protocol import SubmitBody, decode_json, event_fields_of
from shared.version import VERSION

__all__ = [
    "error_response",
    "get_task",
    "healthz",
    "list_events",
    "openapi",
    "prometheus_metrics",
    "readyz",
    "submit_task",
]

_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)


def error_response(err: GatewayError) -> JSONResponse:
    headers = {}
    if isinstance(err, Unavailable | QuotaExceeded):
        headers["Retry-After"] = str(err.retry_after_seconds)
    if isinstance(err, AuthenticationFailed):
        headers["WWW-Authenticate"] = 'Bearer realm="odoo-gateway"'
    return JSONResponse({"error": err.as_dict()}, status_code=err.status, headers=headers)


def _principal(request: Request, state: GatewayState) -> str:
    host = request.client.host if request.client else "?"
    return state.auth.authenticate(_bearer(request), host)


def _bearer(request: Request) -> str | None:
    return bearer_token(request.headers.get("authorization"))


async def _json_body(request: Request, limit: int, timeout: float) -> Any:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and len(declared) < 20 and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    body = bytearray()
    try:
        async with asyncio.timeout(timeout or None):
            async for chunk in request.stream():
                body += chunk
                if len(body) > limit:
                    raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    except TimeoutError:
        raise RequestTimeout(f"The body did not arrive within {timeout:g} s.") from None
    except ClientDisconnect:  # nobody will read the answer; nothing went wrong here
        raise InvalidRequest("The connection closed before the body was complete.") from None
    return decode_json(bytes(body), "body")


async def submit_task(request: Request) -> Response:
    state = gateway_state(request.app)
    principal = _principal(request, state)
    key = request.headers.get("idempotency-key", "").strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1]  # a Structured Field string: the quotes are not part of the key
    if not key:
        raise InvalidRequest("The 'Idempotency-Key' header is required (a UUID per submission).")
    if not _KEY.fullmatch(key):
        raise InvalidRequest("The 'Idempotency-Key' must be 1-255 printable ASCII characters without spaces or quotes.")
    raw = await _json_body(request, state.settings.max_body_bytes, state.settings.body_timeout)
    try:
        body = SubmitBody.model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed("The body is not a valid submission.", details=field_errors(exc)) from None
    outcome = await state.submissions.submit(principal, key, body.kind, body.payload, transport="http")
    task = outcome.task
    return JSONResponse(
        {**task_view(task), "duplicate": outcome.duplicate},
        status_code=202,
        headers={"Location": f"/v1/tasks/{task.id}", "Retry-After": "1"},
    )


async def _owned_task(request: Request, state: GatewayState) -> Any:
    principal = _principal(request, state)
    task = await state.store.get(request.path_params["task_id"])
    if task is None or task.principal != principal:
        # Unknown and forbidden look the same, so task ids can't be probed.
        raise NotFound("No such task.")
    return task


async def get_task(request: Request) -> Response:
    state = gateway_state(request.app)
    task = await _owned_task(request, state)
    headers = {} if task.status.final else {"Retry-After": "1"}
    return JSONResponse(task_view(task), headers=headers)


async def list_events(request: Request) -> Response:
    state = gateway_state(request.app)
    task = await _owned_task(request, state)
    after_raw = request.query_params.get("after", "0")
    # ASCII digits only: str.isdigit() also accepts '²' or '①', which int() refuses.
    if not (after_raw.isascii() and after_raw.isdigit()) or len(after_raw) > 9:
        raise InvalidRequest("'after' must be a non-negative integer (a seq).")
    after = int(after_raw)
    events = await state.store.events_after(task.id, after)
    return JSONResponse(
        {
            "task_id": task.id,
            "status": task.status.value,
            "seq": task.seq,
            "events": [event_fields_of(e) for e in events],
            # True if events after ``after`` existed but were removed by retention.
            "history_pruned": task.history_pruned and after < task.seq,
        }
    )


async def healthz(request: Request) -> Response:
    return JSONResponse({"status": "ok", "version": VERSION})


async def readyz(request: Request) -> Response:
    state = gateway_state(request.app)
    # Shutting down: out of the balancer first, while everything still works.
    checks = {"broker": state.publisher.ready, "events": state.relay.ready, "store": True, "running": True}
    if state.draining:
        checks["running"] = False
    try:
        await state.store.ping()
    except GatewayError:
        checks["store"] = False
    ready = all(checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)


async def prometheus_metrics(request: Request) -> Response:
    body, content_type = metrics.exposition()
    return Response(body, media_type=content_type)


async def openapi(request: Request) -> Response:
    return JSONResponse(OPENAPI)
