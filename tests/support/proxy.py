"""A fault-injecting TCP proxy: sits between a client and a server and breaks the link for real.

::

    with FaultProxy("127.0.0.1", gateway_port) as proxy:
        client_url = proxy.http_url          # point the client here
        proxy.cut()                          # RST every current connection, both sides
        proxy.blackhole(True)                # keep connections, forward nothing (silent partition)
        proxy.blackhole(True, "to_client")   # one way only: requests arrive, answers do not
        proxy.set_latency(0.2)               # added one-way delay per direction, per chunk
        proxy.set_bandwidth(16_000)          # bytes per second, per direction and connection
        proxy.refuse(True)                   # close the listening socket: ECONNREFUSED

Blackholed bytes are held, not dropped (a partition delays TCP segments; it does not corrupt a
stream), and flow again when the blackhole is lifted, unless the peer gave up meanwhile.

The proxy runs its own event loop on a daemon thread, so synchronous tests, async tests (whose
loop it never blocks for more than a control call) and other processes can all use it. Control
methods are thread-safe and return once the change is in effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Literal, TypeVar

__all__ = ["Direction", "FaultProxy", "ProxyStats"]

Direction = Literal["both", "to_server", "to_client"]
T = TypeVar("T")
_CHUNK = 65536
_QUEUE_CHUNKS = 64  # per direction; when full the proxy stops reading, so TCP pushes back
_CONTROL_TIMEOUT = 10.0


@dataclass(frozen=True)
class ProxyStats:
    accepted: int = 0  # client connections accepted
    upstream_failures: int = 0  # accepted, but the target could not be reached
    cut: int = 0  # connections reset by cut()
    bytes_to_server: int = 0
    bytes_to_client: int = 0


def _reset(writer: asyncio.StreamWriter) -> None:
    """Abort with RST (SO_LINGER 0), as a crashed peer or a middlebox would, not a polite FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    server: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class FaultProxy:
    def __init__(
        self, target_host: str, target_port: int, *, listen_host: str = "127.0.0.1", listen_port: int = 0
    ) -> None:
        self.target = (target_host, target_port)
        self.listen_host = listen_host
        self._port = listen_port
        self._latency = 0.0
        self._bandwidth: int | None = None
        self._stats = ProxyStats()
        self._links: set[_Link] = set()
        self._server: asyncio.Server | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._flowing: dict[str, asyncio.Event] = {}

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        if self._thread is not None:
            raise RuntimeError("the proxy is already started")
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(target=loop.run_forever, name=f"fault-proxy->{self.target}", daemon=True)
        self._thread.start()
        self._call(self._init())
        return self

    async def _init(self) -> None:
        self._flowing = {"to_server": asyncio.Event(), "to_client": asyncio.Event()}
        for event in self._flowing.values():
            event.set()
        await self._listen()

    def stop(self) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None or loop.is_closed():
            return
        self._call(self._shutdown())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_CONTROL_TIMEOUT)
        loop.close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._loop is None:
            coro.close()
            raise RuntimeError("the proxy is not started")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("proxy controls must not be called from the proxy's own thread")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(_CONTROL_TIMEOUT)

    # -- where it is -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> tuple[str, int]:
        return self.listen_host, self._port

    @property
    def http_url(self) -> str:
        return f"http://{self.listen_host}:{self._port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.listen_host}:{self._port}"

    # -- controls --------------------------------------------------------------------------

    def cut(self) -> int:
        """Reset every current connection on both sides; returns how many there were."""
        return self._call(self._cut())

    def blackhole(self, on: bool, direction: Direction = "both") -> None:
        """Stop (or resume) forwarding in ``direction``; connections stay open and silent."""
        self._call(self._set_flow(not on, direction))

    def set_latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self._latency = seconds

    def set_bandwidth(self, bytes_per_second: int | None) -> None:
        """Cap each direction of each connection (None: no cap), like a congested mobile link."""
        if bytes_per_second is not None and bytes_per_second <= 0:
            raise ValueError("bandwidth must be > 0 bytes per second, or None")
        self._bandwidth = bytes_per_second

    def refuse(self, on: bool) -> None:
        """Close (or reopen) the listening socket: new connections are refused, current ones live."""
        self._call(self._stop_listening() if on else self._listen())

    def set_target(self, host: str, port: int) -> None:
        """Send new connections elsewhere (current ones keep their server)."""
        self.target = (host, port)

    @property
    def active(self) -> int:
        """Connections currently open through the proxy."""
        return self._call(self._count())

    @property
    def stats(self) -> ProxyStats:
        return self._call(self._snapshot())

    # -- inside the proxy's loop -----------------------------------------------------------

    async def _count(self) -> int:
        return len(self._links)

    async def _snapshot(self) -> ProxyStats:
        return self._stats

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._accept, self.listen_host, self._port, reuse_address=True)
            self._port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _set_flow(self, flowing: bool, direction: Direction) -> None:
        names = ("to_server", "to_client") if direction == "both" else (direction,)
        for name in names:
            if flowing:
                self._flowing[name].set()
            else:
                self._flowing[name].clear()

    async def _cut(self) -> int:
        links = list(self._links)
        for link in links:
            self._drop(link, reset=True)
        self._stats = replace(self._stats, cut=self._stats.cut + len(links))
        return len(links)

    async def _shutdown(self) -> None:
        await self._stop_listening()
        for link in list(self._links):
            self._drop(link, reset=True)

    def _drop(self, link: _Link, *, reset: bool) -> None:
        if link not in self._links:
            return
        self._links.discard(link)
        for task in link.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        for writer in (link.client, link.server):
            if writer is None:
                continue
            if reset:
                _reset(writer)
            else:
                writer.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        link = _Link(client=writer)
        self._links.add(link)
        self._stats = replace(self._stats, accepted=self._stats.accepted + 1)
        current = asyncio.current_task()
        if current is not None:
            link.tasks.append(current)
        try:
            # While requests are blackholed, do not even reach the server: it would only see an
            # idle connection and time it out, which is not what a partition looks like.
            await self._flowing["to_server"].wait()
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.target)
            except OSError:
                self._stats = replace(self._stats, upstream_failures=self._stats.upstream_failures + 1)
                self._drop(link, reset=True)
                return
            if link not in self._links:  # cut while connecting
                _reset(up_writer)
                return
            link.server = up_writer
            pumps = [
                asyncio.create_task(self._pump(link, reader, up_writer, "to_server")),
                asyncio.create_task(self._pump(link, up_reader, writer, "to_client")),
            ]
            link.tasks.extend(pumps)
            await asyncio.gather(*pumps, return_exceptions=True)
        except asyncio.CancelledError:
            pass
        finally:
            self._drop(link, reset=False)

    async def _pump(
        self, link: _Link, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, direction: Direction
    ) -> None:
        loop = asyncio.get_running_loop()
        # (arrival time, chunk); b"" is the end of the stream, None a failed read.
        queue: asyncio.Queue[tuple[float, bytes | None]] = asyncio.Queue(_QUEUE_CHUNKS)

        async def read_side() -> None:
            while True:
                try:
                    data: bytes | None = await reader.read(_CHUNK)
                except OSError:
                    data = None
                await queue.put((loop.time(), data))
                if not data:
                    return

        reading = asyncio.create_task(read_side())
        try:
            while True:
                received, data = await queue.get()
                if data is None:
                    # A reset from one side: a real middlebox tears the whole flow down.
                    self._drop(link, reset=True)
                    return
                # Latency counts from when the chunk arrived, so it adds delay, not a throughput cap.
                delay = received + self._latency - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._flowing[direction].wait()
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                for piece in self._paced(data):
                    rate = self._bandwidth
                    if rate is not None:
                        await asyncio.sleep(len(piece) / rate)
                    writer.write(piece)
                    await writer.drain()
                self._count_bytes(direction, len(data))
        except OSError:
            self._drop(link, reset=True)
        finally:
            reading.cancel()

    def _paced(self, data: bytes) -> list[bytes]:
        """Under a bandwidth cap, send in small pieces so a big chunk trickles, as on a slow link."""
        if self._bandwidth is None:
            return [data]
        step = max(1, min(len(data), self._bandwidth // 10))
        return [data[i : i + step] for i in range(0, len(data), step)]

    def _count_bytes(self, direction: Direction, size: int) -> None:
        stats = self._stats
        if direction == "to_server":
            self._stats = replace(stats, bytes_to_server=stats.bytes_to_server + size)
        else:
            self._stats = replace(stats, bytes_to_client=stats.bytes_to_client + size)
