"""Integration fixtures: the real RabbitMQ and PostgreSQL of this machine (fail in CI if
absent), and whole running systems on the SQLite and PostgreSQL stores.

Every test that uses a stack runs once per Odoo API (``odoo_api``: JSON-RPC against an Odoo
17 stand-in, JSON-2 against an Odoo 19 one). ``odoo_api`` is a session-scoped parameter, so
pytest runs all the JSON-RPC tests, stops those stacks, then starts the JSON-2 ones: only
one set of stacks runs at a time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.processes import ROOT
from tests.support.services import create_pg_database, drop_pg_database, require_service
from tests.support.stack import ODOO_APIS, Stack, running_stack

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


@pytest.fixture(scope="session", params=ODOO_APIS)
def odoo_api(request: pytest.FixtureRequest) -> str:
    """The Odoo API the stacks' workers speak."""
    value: str = request.param
    return value


@pytest.fixture(scope="session")
def pg_url(odoo_api: str) -> Iterator[str]:
    """A fresh PostgreSQL database per Odoo API: the two sets of stacks never share a store."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def store_pg_url() -> Iterator[str]:
    """A PostgreSQL database for tests of the store alone (no stack, no Odoo API)."""
    url = create_pg_database()
    yield url
    drop_pg_database(url)


@pytest.fixture(scope="session")
def postgres_stack(pg_url: str, odoo_api: str) -> Iterator[Stack]:
    """Two gateway instances and one worker on one broker vhost and one PostgreSQL store."""
    with running_stack(pg_url, LOG_DIR / odoo_api, gateways=2, odoo_api=odoo_api) as stack:
        yield stack


@pytest.fixture(scope="session")
def sqlite_stack(tmp_path_factory: pytest.TempPathFactory, odoo_api: str) -> Iterator[Stack]:
    """The embedded default: one gateway and one worker sharing a SQLite file."""
    path = tmp_path_factory.mktemp(f"sqlite-{odoo_api}") / "gateway.sqlite3"
    with running_stack(f"sqlite:///{path}", LOG_DIR / odoo_api, gateways=1, odoo_api=odoo_api) as stack:
        yield stack


@pytest.fixture(params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, odoo_api: str) -> Iterator[Stack]:
    # odoo_api is named here so that the stack fetched by name below is that API's.
    value: Stack = request.getfixturevalue(f"{request.param}_stack")
    value.standin.clear_faults()
    yield value
    value.standin.clear_faults()


@pytest.fixture
def pg_stack(postgres_stack: Stack) -> Iterator[Stack]:
    postgres_stack.standin.clear_faults()
    yield postgres_stack
    postgres_stack.standin.clear_faults()
