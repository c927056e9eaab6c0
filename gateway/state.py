"""Everything one gateway instance holds while it runs, reachable from the ASGI app."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from gateway.auth import Authenticator, OriginPolicy
from gateway.hub import Hub
from gateway.publisher import TaskPublisher
from gateway.relay import EventRelay
from gateway.submissions import Submissions
from shared.config import Settings
from shared.store import AsyncTaskStore

if TYPE_CHECKING:
    from gateway.ws import WsSession

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
    hub: Hub = field(default_factory=Hub)
    sessions: dict[str, WsSession] = field(default_factory=dict)


def gateway_state(app: Starlette) -> GatewayState:
    state: GatewayState = app.state.gateway
    return state
