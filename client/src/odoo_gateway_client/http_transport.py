"""HTTP polling, for when no WebSocket can be opened: same outbox, same keys, same events.

A round POSTs every unacknowledged submission (``Idempotency-Key`` = its key) and reads
``GET /v1/tasks/{id}/events?after=<last seq>`` for every unsettled task, so the application
sees the same events in the same order as over a socket, only later.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import quote

import httpx

from odoo_gateway_client.backoff import Backoff
from odoo_gateway_client.errors import AuthenticationError
from odoo_gateway_client.handle import TaskEvent, TaskHandle
from odoo_gateway_client.ledger import Ledger
from odoo_gateway_client.ws_transport import retry_delay
from odoo_gateway_wire.error_codes import is_retryable
from odoo_gateway_wire.statuses import FINAL_STATUSES, TaskStatus

__all__ = ["HttpPoller", "fetch_final"]

log = logging.getLogger(__name__)
_RETRY_STATUSES = frozenset({408, 425, 429})


def _task_path(task_id: str) -> str:
    return f"/v1/tasks/{quote(task_id, safe='')}"


def _error_of(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return error
    except ValueError:
        pass
    return {"code": f"http_{response.status_code}", "message": response.reason_phrase, "details": None}


def _check_auth(response: httpx.Response) -> None:
    if response.status_code == 401:
        raise AuthenticationError(f"the gateway refused the token: {_error_of(response).get('message')}")


async def fetch_final(http: httpx.AsyncClient, task_id: str) -> TaskEvent | None:
    """The final state of a task as an event, from ``GET /v1/tasks/{id}``; None if not final."""
    response = await http.get(_task_path(task_id))
    _check_auth(response)
    if response.status_code != 200:
        return None
    body = response.json()
    if body.get("status") not in FINAL_STATUSES:
        return None
    return TaskEvent(
        task_id=task_id,
        seq=int(body["seq"]),
        status=TaskStatus(body["status"]),
        attempt=int(body.get("attempts") or 0),
        result=body.get("result"),
        error=body.get("error"),
        at=body.get("updated_at"),
    )


class HttpPoller:
    def __init__(
        self,
        http: httpx.AsyncClient,
        ledger: Ledger,
        kick: asyncio.Event,
        connected: asyncio.Event,
        *,
        poll_interval: float = 1.0,
        backoff: Backoff | None = None,
    ) -> None:
        self._http = http
        self._ledger = ledger
        self._kick = kick
        self._connected = connected
        self._poll_interval = poll_interval
        self._backoff = backoff or Backoff()
        self.last_error: str | None = None

    async def run(self, until: float | None = None) -> None:
        """Poll until loop time ``until`` (forever if None). Raises AuthenticationError."""
        loop = asyncio.get_running_loop()
        while until is None or loop.time() < until:
            self._kick.clear()
            try:
                await self.round()
            except httpx.TransportError as exc:
                self._connected.clear()
                self.last_error = f"cannot reach {self._http.base_url}: {exc or type(exc).__name__}"
                delay = self._backoff.next_delay()
            else:
                self._connected.set()
                self._backoff.reset()
                delay = self._poll_interval
            if until is not None:
                delay = max(0.0, min(delay, until - loop.time()))
            # A new submission (kick) is sent at once instead of at the next poll.
            try:
                async with asyncio.timeout(delay):
                    await self._kick.wait()
            except TimeoutError:
                pass

    async def round(self) -> None:
        now = asyncio.get_running_loop().time()
        for handle in self._ledger.unsent():
            if handle.not_before <= now and not handle.surfaced and not handle.held:
                await self._post(handle)
        for task_id, after in self._ledger.watched().items():
            await self._poll(task_id, after)

    async def _post(self, handle: TaskHandle) -> None:
        assert handle.key is not None
        handle.sends += 1
        handle.posting += 1
        try:
            response = await self._http.post(
                "/v1/tasks",
                json={"kind": handle.kind, "payload": handle.payload},
                headers={"Idempotency-Key": handle.key},
            )
        except (httpx.ConnectError, httpx.ConnectTimeout):
            handle.sends -= 1  # no connection, so provably not sent
            raise
        finally:
            handle.posting -= 1
        # Any other transport error is ambiguous (it may have arrived): it propagates, and the next
        # round resends with the same key, which the gateway answers with the same task.
        if response.status_code == 401:
            handle.sends -= 1  # refused before the gateway looked at it
            _check_auth(response)
        if response.status_code in (200, 201, 202):
            await self._ledger.accepted(handle, str(response.json()["task_id"]))
            return
        error = _error_of(response)
        retry_after = response.headers.get("retry-after")
        if (
            response.status_code >= 500
            or response.status_code in _RETRY_STATUSES
            or is_retryable(str(error.get("code")), None)
        ):
            handle.not_before = asyncio.get_running_loop().time() + retry_delay(retry_after)
            log.info("submission %s: HTTP %d; resending later", handle.key, response.status_code)
            return
        await self._ledger.reject(handle, str(error.get("code")), str(error.get("message")), error.get("details"))

    async def _poll(self, task_id: str, after: int) -> None:
        response = await self._http.get(f"{_task_path(task_id)}/events", params={"after": after})
        _check_auth(response)
        if response.status_code == 404:
            await self._ledger.unknown(task_id)
            return
        if response.status_code != 200:
            return  # 5xx: the next round asks again
        body = response.json()
        for item in body.get("events") or []:
            await self._ledger.event(TaskEvent.from_wire(item, task_id))
        if body.get("history_pruned") and body.get("status") in FINAL_STATUSES:
            handles = self._ledger.for_task(task_id)
            if any(not h.settled for h in handles):
                final = await fetch_final(self._http, task_id)
                if final is not None:
                    await self._ledger.event(final)
