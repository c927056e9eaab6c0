"""Python client of the Odoo submission gateway (the reference implementation of protocol v1).

::

    async with GatewayClient("http://gateway:8000", token, "outbox.sqlite3") as client:
        handle = await client.submit("sale.order.create", payload)   # durable at once
        task_id = await handle.accepted()
        async for event in handle.events():
            ...
        state = await handle.result()

Submissions go to a local SQLite outbox first and are resent with the same idempotency key
until acknowledged, across reconnects and restarts; see ``odoo_gateway_client.connection``.
"""

from odoo_gateway_client.backoff import Backoff
from odoo_gateway_client.connection import GatewayClient
from odoo_gateway_client.errors import (
    AuthenticationError,
    ClientClosed,
    ConnectionRefused,
    GatewayClientError,
    SubmissionRejected,
    TaskNotFound,
)
from odoo_gateway_client.handle import FinalState, TaskEvent, TaskHandle
from odoo_gateway_client.outbox import Outbox, OutboxEntry
from odoo_gateway_client.status import HandleStatus, LocalStatus, TaskStatus
from odoo_gateway_client.sync import SyncClient

__all__ = [
    "AuthenticationError",
    "Backoff",
    "ClientClosed",
    "ConnectionRefused",
    "FinalState",
    "GatewayClient",
    "GatewayClientError",
    "HandleStatus",
    "LocalStatus",
    "Outbox",
    "OutboxEntry",
    "SubmissionRejected",
    "SyncClient",
    "TaskEvent",
    "TaskHandle",
    "TaskNotFound",
    "TaskStatus",
]
