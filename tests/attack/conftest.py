"""The attack suite: a running system with tight, known bounds, attacked from outside with
raw sockets (a peer that stops reading, unfinished headers) and hand-made broker messages.
Each test prints the figure it measured; README "Hostile peers" reports them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT
from tests.support.services import require_service
from tests.support.stack import Stack, running_stack

LOG_DIR = ROOT / "test-artifacts" / "logs"

#: The bounds the attack stack runs with (the defaults are in README "Limits").
BOUNDS = {
    "GATEWAY_WS_SEND_TIMEOUT": "2",
    "GATEWAY_WS_SEND_QUEUE_BYTES": "262144",
    "GATEWAY_WS_FRAMES_PER_SECOND": "20",
    "GATEWAY_WS_RESUME_IDS_PER_SECOND": "50",
    "GATEWAY_MAX_SOCKETS_PER_TENANT": "12",
    "GATEWAY_MAX_WATCHES_PER_SOCKET": "3",
    "GATEWAY_MAX_WATCHES_PER_TENANT": "20",
    "GATEWAY_HEADER_TIMEOUT": "2",
    "GATEWAY_MAX_HEADER_BYTES": "16384",
    "GATEWAY_BODY_TIMEOUT": "2",
    # Throttling is tested on a stack of its own: here, every test shares 127.0.0.1.
    "GATEWAY_AUTH_FAILURES_PER_MINUTE": "0",
}


@pytest.fixture(scope="session", autouse=True)
def _services() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached")


@pytest.fixture(scope="package")
def attack_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    path = tmp_path_factory.mktemp("attack") / "gateway.sqlite3"
    with running_stack(f"sqlite:///{path}", LOG_DIR / "attack", gateways=1, **BOUNDS) as stack:
        yield stack
