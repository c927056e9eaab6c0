"""Everything one gateway instance holds while it runs, reachable from the ASGI app."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.applications import Starlette

from gateway.auth import Authenticator, OriginPolicy
from gateway.failed_tasks import FailedTasks
from gateway.publisher import TaskPublisher
from gateway.registry import SessionRegistry
from gateway.relay import EventRelay
from gateway.submissions import Submissions
from shared.config import Settings
from shared.store import AsyncTaskStore

__all__ = ["GatewayState", "gateway_state"]


@dataclass
class GatewayState:
    settings: Settings
    store: AsyncTaskStore
    publisher: TaskPublisher
    relay: EventRelay
    submissions: Submissions
    auth: Authenticator
    origins: OriginPolicy
    registry: SessionRegistry
    #: Operators (GATEWAY_ADMIN_TOKEN), apart from tenants.
    admin_auth: Authenticator
    failed: FailedTasks
    #: Set on SIGTERM (gateway/shutdown.py): /readyz answers 503 from then on.
    draining: bool = False


def gateway_state(app: Starlette) -> GatewayState:
    state: GatewayState = app.state.gateway
    return state
