"""A gateway whose store is down stops consuming task events (they wait in RabbitMQ,
unacknowledged, instead of being requeued in a loop) and starts again once it is back."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from odoo_gateway_wire.statuses import TaskStatus, event_seq
from shared.events import TaskEvent
from shared.names import STORE_QUEUE
from tests.attack.conftest import LOG_DIR
from tests.attack.peers import publish_events
from tests.attack.test_ws_attacks import submit
from tests.support.services import PG_ADMIN_URL, create_pg_database, drop_pg_database, queue_counts, require_service
from tests.support.stack import Stack, running_stack, wait_for


@pytest.fixture
def pg_stack() -> Iterator[Stack]:
    require_service(
        "PostgreSQL", "127.0.0.1", 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    )
    url = create_pg_database()
    try:
        with running_stack(url, LOG_DIR / "store-down", gateways=1) as stack:
            yield stack
    finally:
        _allow_connections(url, True)
        drop_pg_database(url)


def _allow_connections(url: str, allow: bool) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))


def test_the_relay_stops_consuming_while_the_store_is_down(pg_stack: Stack) -> None:
    stack = pg_stack
    url = stack.env["AMQP_URL"]
    stack.worker.stop()  # only the gateway's relay touches the store from here on
    task_id = submit(stack)
    wait_for(lambda: queue_counts(url, STORE_QUEUE)[1] == 1, 10, "the relay consuming")
    _allow_connections(stack.env["DATABASE_URL"], False)
    event = TaskEvent(task_id=task_id, seq=event_seq(1, TaskStatus.RUNNING), status=TaskStatus.RUNNING, attempt=1)
    publish_events(url, [event])
    wait_for(lambda: queue_counts(url, STORE_QUEUE) == (1, 0), 20, "the event waiting with no consumer")
    log = stack.gateways[0][0].log(tail=100_000)
    assert log.count("store unavailable: event consumption paused") == 1
    assert log.count("requeued") <= 2  # no requeue loop while paused
    _allow_connections(stack.env["DATABASE_URL"], True)
    wait_for(lambda: queue_counts(url, STORE_QUEUE) == (0, 1), 30, "consumption resumed and the event taken")
    wait_for(lambda: stack.task(task_id)["seq"] == event.seq, 10, "the waiting event stored")
    assert "event consumption resumed" in stack.gateways[0][0].log(tail=100_000)
    print("\nATTACK store down: relay paused consuming (1 event left waiting), resumed when the store came back")
