"""Python client of the Odoo submission gateway (the reference implementation of protocol v1).

::

    async with GatewayClient("http://gateway:8000", token, "outbox.sqlite3") as client:
        handle = await client.submit("sale.order.create", payload)   # durable at once
        task_id = await handle.accepted()
        async for event in handle.events():
            ...
        state = await handle.result()

Submissions go to a local SQLite outbox first and are resent with the same idempotency key
until acknowledged, across reconnects and restarts; see ``client.connection``.
"""

from client.backoff import Backoff
from client.connection import GatewayClient
from client.errors import (
    AuthenticationError,
    ClientClosed,
    ConnectionRefused,
    GatewayClientError,
    SubmissionRejected,
    TaskNotFound,
)
from client.handle import FinalState, TaskEvent, TaskHandle
from client.outbox import Outbox, OutboxEntry
from client.sync import SyncClient

__all__ = [
    "AuthenticationError",
    "Backoff",
    "ClientClosed",
    "ConnectionRefused",
    "FinalState",
    "GatewayClient",
    "GatewayClientError",
    "Outbox",
    "OutboxEntry",
    "SubmissionRejected",
    "SyncClient",
    "TaskEvent",
    "TaskHandle",
    "TaskNotFound",
]
