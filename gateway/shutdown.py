"""Graceful shutdown: on SIGTERM (or SIGINT) the gateway goes first, uvicorn after.

1. ``/readyz`` answers 503 at once, so load balancers take this instance out;
2. for ``GATEWAY_SHUTDOWN_DRAIN_SECONDS`` everything keeps working (the balancer notices,
   requests already on their way are served);
3. every socket finishes the frame it is handling (a submission under way gets its
   ``accepted`` or error), sends what is queued, and is closed with 1001 GOING_AWAY
   (reconnect to another instance and resume); this step is bounded;
4. uvicorn's own handler runs: listeners close, HTTP requests under way finish (its
   graceful timeout), then the lifespan shutdown (store, publisher, relay).

A second signal skips straight to step 4. The handler is installed from the lifespan (it
wraps the one uvicorn installed), only in the main thread.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from types import FrameType
from typing import Any

from gateway.state import GatewayState
from odoo_gateway_wire.close_codes import CloseCode

__all__ = ["GracefulShutdown"]

log = logging.getLogger(__name__)
#: How long sockets get to finish their frame and close before uvicorn takes over.
_SOCKETS_SECONDS = 3.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulShutdown:
    def __init__(self, state: GatewayState) -> None:
        self._state = state
        self._previous: dict[int, Any] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # in-process test clients: no signals to take
        self._loop = asyncio.get_running_loop()
        for sig in _SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def uninstall(self) -> None:
        for sig, previous in self._previous.items():
            if signal.getsignal(sig) == self._on_signal:
                signal.signal(sig, previous)
        self._previous.clear()

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        loop = self._loop
        if self._state.draining or loop is None or loop.is_closed():
            self._chain(sig, frame)
            return
        self._state.draining = True
        log.info(
            "shutdown requested (%s): readiness 503, draining for %.1fs",
            signal.Signals(sig).name,
            self._state.settings.shutdown_drain_seconds,
        )
        loop.call_soon_threadsafe(self._start, sig)

    def _start(self, sig: int) -> None:
        self._task = asyncio.create_task(self._drain(sig), name="graceful-shutdown")

    async def _drain(self, sig: int) -> None:
        try:
            await asyncio.sleep(self._state.settings.shutdown_drain_seconds)
            registry = self._state.registry
            count = len(registry)
            registry.drain_all(CloseCode.GOING_AWAY, "gateway shutting down; reconnect")
            deadline = time.monotonic() + _SOCKETS_SECONDS
            while len(registry) and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            log.info("shutdown: %d socket(s) drained, %d left to the server", count - len(registry), len(registry))
        finally:
            self._chain(sig, None)

    def _chain(self, sig: int, frame: FrameType | None) -> None:
        """Hand the signal to whoever had it before (uvicorn's ``handle_exit``)."""
        previous = self._previous.get(sig)
        if callable(previous):
            previous(sig, frame)
        elif previous == signal.SIG_IGN:
            return
        else:
            raise SystemExit(128 + sig)
