"""A synchronous wrapper for scripts: the async client runs on its own thread and loop.

::

    with SyncClient("http://gateway:8000", token, "outbox.sqlite3") as client:
        task_id = client.submit("inventory.adjust", payload)
        state = client.wait(task_id, timeout=120)
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from odoo_gateway_client.connection import GatewayClient
from odoo_gateway_client.handle import FinalState, TaskHandle
from odoo_gateway_client.outbox import OutboxEntry

__all__ = ["SyncClient"]

T = TypeVar("T")


class SyncClient:
    """Blocking facade over :class:`GatewayClient`; ``options`` are passed to it unchanged."""

    def __init__(self, base_url: str, token: str, outbox_path: str | os.PathLike[str], **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="gateway-client-loop", daemon=True)
        self._thread.start()
        try:
            self._client = self._call(self._open(base_url, token, outbox_path, options))
        except BaseException:
            self._stop_loop()
            raise

    @staticmethod
    async def _open(base_url: str, token: str, outbox_path: str | os.PathLike[str], options: Any) -> GatewayClient:
        # Built on the loop's own thread: its events and tasks belong to that loop.
        client = GatewayClient(base_url, token, outbox_path, **options)
        await client.start()
        return client

    def _call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no answer within {timeout} s") from None

    async def _handle_for(self, task_id: str) -> TaskHandle:
        return self._client.handle_for(task_id)

    async def _submit(self, kind: str, payload: dict[str, Any], key: str | None) -> TaskHandle:
        return await self._client.submit(kind, payload, idempotency_key=key)

    def submit(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        timeout: float | None = 60.0,
        idempotency_key: str | None = None,
    ) -> str:
        """The task id, once the gateway acknowledged the submission. On TimeoutError the
        submission is still in the outbox and keeps being sent: do not submit it again; call
        :meth:`pending` or pass your own ``idempotency_key`` to retry safely."""
        handle = self._call(self._submit(kind, payload, idempotency_key))
        return self._call(handle.accepted(), timeout)

    def wait(self, task_id: str, timeout: float | None = None) -> FinalState:
        """The final state of ``task_id`` (``succeeded`` or ``failed``)."""
        handle = self._call(self._handle_for(task_id))
        return self._call(handle.result(), timeout)

    def pending(self) -> list[OutboxEntry]:
        return self._client.entries()

    @property
    def connected(self) -> bool:
        return self._client.connected

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._client.close(), timeout=30.0)
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30.0)
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
