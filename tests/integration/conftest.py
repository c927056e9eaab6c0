"""Integration fixtures: the real RabbitMQ and PostgreSQL of this machine (fail in CI if
absent), and whole running systems on the SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT
from tests.support.services import create_pg_database, drop_pg_database, require_service
from tests.support.stack import Stack, running_stack

LOG_DIR = ROOT / "test-artifacts" / "logs"


@pytest.fixture(scope="session", autouse=True)
def _services() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached")
    require_service(
        "PostgreSQL",
        "127.0.0.1",
        5432,
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    )


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def postgres_stack(pg_url: str) -> Iterator[Stack]:
    """Two gateway instances and one worker on one broker vhost and one PostgreSQL store."""
    with running_stack(pg_url, LOG_DIR, gateways=2) as stack:
        yield stack


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The embedded default: one gateway and one worker sharing a SQLite file."""
    path = tmp_path_factory.mktemp("sqlite") / "gateway.sqlite3"
    with running_stack(f"sqlite:///{path}", LOG_DIR, gateways=1) as stack:
        yield stack


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    value: Stack = request.getfixturevalue(f"{request.param}_stack")
    value.standin.clear_faults()
    yield value
    value.standin.clear_faults()


@pytest.fixture
def pg_stack(postgres_stack: Stack) -> Iterator[Stack]:
    postgres_stack.standin.clear_faults()
    yield postgres_stack
    postgres_stack.standin.clear_faults()
