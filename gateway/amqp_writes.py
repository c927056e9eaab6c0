"""AMQP frames written in one turn of the event loop go to the socket in one ``send``.

aiormq's writer task writes each queued frame with its own ``transport.write``, so every
publish costs a system call (and, on loopback, the broker's side of the TCP stack at once):
~10 % of the gateway's CPU per accept. Group commit makes submissions finish their store
write together, so their publishes are queued in the same turn of the loop; here they leave
in one write at the start of the next turn. Nothing else changes: aiormq still counts
delivery tags and waits for each confirm, and ``drain()`` is still its flow control (it
never meant "sent"). Installed through aiormq's own hook (``transport_factory``), which
aio-pika passes on from the connection class below; site-packages stay as they are.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
from aiormq.connection import SSLContextProvider, TransportFactory
from aiormq.exceptions import AMQPConnectionError
from yarl import URL

__all__ = ["CoalescingConnection", "CoalescingStreamWriter", "CoalescingTransportFactory"]

_READ_LIMIT = 2**16  # asyncio.open_connection's default, which aiormq used


class CoalescingStreamWriter(asyncio.StreamWriter):
    """A ``StreamWriter`` whose ``write`` calls in one loop turn become one transport write."""

    def __init__(
        self,
        transport: asyncio.WriteTransport,
        protocol: asyncio.StreamReaderProtocol,
        reader: asyncio.StreamReader | None,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        super().__init__(transport, protocol, reader, loop)
        self._pending: list[bytes] = []
        self._loop_ref = loop

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not self._pending:
            self._loop_ref.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, data: Any) -> None:
        for chunk in data:
            self.write(chunk)

    def flush(self) -> None:
        """Hand what is pending to the transport now (it ignores writes once closing)."""
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending = []
            super().write(data)

    def write_eof(self) -> None:
        self.flush()
        super().write_eof()

    def close(self) -> None:
        self.flush()  # aiormq's Connection.Close frame is written just before
        super().close()


class CoalescingTransportFactory(TransportFactory):
    """aiormq's TCP and TLS factories, with a :class:`CoalescingStreamWriter`."""

    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        provider: SSLContextProvider | None = kwargs.pop("ssl_context_provider", None)
        ssl = await provider.get_context() if url.scheme == "amqps" and provider is not None else None
        assert url.host is not None and url.port is not None  # aiormq filled in the default port
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=_READ_LIMIT, loop=loop)
        protocol = asyncio.StreamReaderProtocol(reader, loop=loop)
        try:
            transport, _ = await loop.create_connection(lambda: protocol, url.host, url.port, ssl=ssl, **kwargs)
        except OSError as e:
            raise AMQPConnectionError(*e.args) from e
        return reader, CoalescingStreamWriter(transport, protocol, reader, loop)


class CoalescingConnection(aio_pika.Connection):
    """aio-pika's connection, asking aiormq for :class:`CoalescingTransportFactory`
    (``aio_pika.connect(..., connection_class=CoalescingConnection)``)."""

    def __init__(self, url: URL, *args: Any, **kwargs: Any) -> None:
        super().__init__(url, *args, **kwargs)
        self.kwargs["transport_factory"] = CoalescingTransportFactory()
