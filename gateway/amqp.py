"""A RabbitMQ connection that keeps itself up, with set-up re-run after each reconnect.

aio-pika's robust connection restores queues by their old names, which can stay locked
by the dead connection (RESOURCE_LOCKED) and silently loses what was routed meanwhile;
here every (re)connect runs the caller's ``setup`` from scratch, so the relay can also
resynchronise its sockets from the store after a gap.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

from gateway.amqp_writes import CoalescingConnection
from shared.names import connection_name

__all__ = ["AmqpLink"]

log = logging.getLogger(__name__)
_STOP_SECONDS = 5.0


class AmqpLink:
    def __init__(
        self,
        url: str,
        role: str,
        setup: Callable[[AbstractConnection], Awaitable[None]],
        *,
        on_down: Callable[[], None] | None = None,
    ) -> None:
        self._url = url
        self.name = connection_name(role)
        self._setup = setup
        self._on_down = on_down
        self._task: asyncio.Task[None] | None = None
        self.connection: AbstractConnection | None = None
        self.up = asyncio.Event()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"amqp:{self.name}")

    async def stop(self) -> None:
        """Close, bounded: a shutdown never hangs on a broker that does not answer."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=_STOP_SECONDS)
        if self.connection is not None and not self.connection.is_closed:
            try:
                async with asyncio.timeout(_STOP_SECONDS):
                    await self.connection.close()
            except TimeoutError:
                log.warning("amqp connection name=%s did not close within %.0fs; dropped", self.name, _STOP_SECONDS)

    async def _run(self) -> None:
        delay = 0.5
        while True:
            closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            try:
                connection = await aio_pika.connect(
                    self._url,
                    timeout=10,
                    client_properties={"connection_name": self.name},
                    connection_class=CoalescingConnection,  # one socket write per loop turn
                )

                def _closed(_sender: Any, exc: BaseException | None = None, done: Any = closed) -> None:
                    if not done.done():
                        done.set_result(None)

                connection.close_callbacks.add(_closed)
                self.connection = connection
                await self._setup(connection)
                self.up.set()
                delay = 0.5
                log.info("amqp connection up name=%s", self.name)
                await closed
                log.warning("amqp connection lost name=%s; reconnecting", self.name)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("amqp connection failed name=%s (%r); retry in %.1fs", self.name, exc, delay)
            self.up.clear()
            if self._on_down is not None:
                self._on_down()
            if self.connection is not None and not self.connection.is_closed:
                await asyncio.gather(self.connection.close(), return_exceptions=True)
            self.connection = None
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 5.0)
