"""The operators' HTTP API under ``/v1/admin``: failed tasks of any tenant, and their retry.

Authenticated by ``GATEWAY_ADMIN_TOKEN`` (a bearer token distinct from every tenant's; the
API refuses everyone while it is empty), with the same failed-login throttle as tenants.
"""

from __future__ import annotations

import math

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.auth import bearer_token
from gateway.state import GatewayState, gateway_state
from gateway.views import task_view
from shared.errors import InvalidRequest
from shared.store import TaskRecord

__all__ = ["list_failed", "retry_task"]

_MAX_LIMIT = 1000


def _operator(request: Request, state: GatewayState) -> str:
    host = request.client.host if request.client else "?"
    return state.admin_auth.authenticate(bearer_token(request.headers.get("authorization")), host)


def _view(task: TaskRecord) -> dict[str, object]:
    return {**task_view(task), "tenant": task.principal}


def _limit(raw: str) -> int:
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw[:5]) <= _MAX_LIMIT:
        raise InvalidRequest(f"'limit' must be an integer from 1 to {_MAX_LIMIT}.")
    return int(raw)


def _before(raw: str | None) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or len(raw) > 32:
        raise InvalidRequest("'before' must be a timestamp (seconds, as in 'updated_at').")
    return value


async def list_failed(request: Request) -> Response:
    """``GET /v1/admin/failed?tenant=&limit=&before=``: newest first; page with ``before``
    set to the last ``updated_at`` seen."""
    state = gateway_state(request.app)
    _operator(request, state)
    tenant = request.query_params.get("tenant") or None
    limit = _limit(request.query_params.get("limit", "100"))
    tasks = await state.failed.list(tenant, limit, _before(request.query_params.get("before")))
    return JSONResponse({"tasks": [_view(task) for task in tasks]})


async def retry_task(request: Request) -> Response:
    """``POST /v1/admin/tasks/{task_id}/retry``: 202 with the reopened task."""
    state = gateway_state(request.app)
    _operator(request, state)
    task = await state.failed.retry(request.path_params["task_id"])
    return JSONResponse(_view(task), status_code=202, headers={"Location": f"/v1/tasks/{task.id}"})
