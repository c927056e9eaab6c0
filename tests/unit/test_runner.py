"""The exactly-once attempt logic against the Odoo stand-in (real odoorpc over HTTP),
with a real SQLite store and the events captured instead of published."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import Settings
from shared.events import TaskEvent, TaskStatus
from shared.kinds import KINDS, resource_keys, task_reference, validate_payload
from shared.store import NewTask, TaskStore, open_store
from tests.odoo_standin import FaultRule, OdooStandin
from workers.odoo_client import OdooRpcClient
from workers.runner import RetryLater, TaskAbandoned, TaskAttempt, TaskRunner, backoff_seconds

SALE = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2.0}]}


@pytest.fixture(scope="module")
def standin() -> Iterator[OdooStandin]:
    with OdooStandin(port=0).start() as s:
        yield s


@pytest.fixture
def store(tmp_path: Path) -> Iterator[TaskStore]:
    s = open_store(f"sqlite:///{tmp_path / 'store.sqlite3'}")
    yield s
    s.close()


class Harness:
    def __init__(self, standin: OdooStandin, store: TaskStore, **settings: object) -> None:
        self.settings = Settings.model_validate(
            {
                "odoo_url": standin.url,
                "odoo_password": "admin",
                "odoo_timeout": 2,
                "lease_seconds": 5,
                "max_attempts": 3,
                "min_backoff": 1,
                "max_backoff": 4,
                **settings,
            }
        )
        self.events: list[TaskEvent] = []
        self.slept: list[float] = []
        self.now = 1_000_000.0
        self.store = store
        self.runner = TaskRunner(
            self.settings,
            store,
            OdooRpcClient(self.settings),
            self.events.append,
            worker_id="worker@test",
            clock=lambda: self.now,
            sleep=self._sleep,
            rand=lambda: 0.5,
        )

    def accept(self, kind: str = "sale.order.create", payload: dict[str, object] | None = None) -> str:
        """A task as the gateway records it: every message a worker runs stands for one."""
        body = validate_payload(kind, payload or SALE)
        new = NewTask(str(uuid.uuid4()), "demo", str(uuid.uuid4()), "fp", kind, body, resource_keys(kind, body))
        task, _ = self.store.create_or_get(new, self.now, 10)
        return task.id

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def statuses(self) -> list[tuple[int, TaskStatus]]:
        return [(e.seq, e.status) for e in self.events]


def attempt(
    task_id: str, n: int = 1, kind: str = "sale.order.create", payload: dict[str, object] | None = None
) -> TaskAttempt:
    return TaskAttempt(task_id=task_id, kind=kind, payload=payload or SALE, attempt=n)


def orders(standin: OdooStandin, task_id: str) -> int:
    return sum(1 for o in standin.records("sale.order") if o.get("client_order_ref") == f"GW-{task_id}")


def test_success(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    h.runner.run(attempt(task_id))
    assert h.statuses() == [(2, TaskStatus.RUNNING), (4, TaskStatus.SUCCEEDED)]
    assert h.events[-1].result is not None and "sale_order_id" in h.events[-1].result
    assert orders(standin, task_id) == 1
    assert store.acquire_lease(task_id, "other", h.now, 5) is None  # released


def test_commit_then_lost_reply_is_found_in_the_same_attempt(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    standin.add_fault(FaultRule(kind="commit_then_drop", model="sale.order", method="create"))
    h.runner.run(attempt(task_id))
    assert h.statuses()[-1] == (4, TaskStatus.SUCCEEDED)
    assert orders(standin, task_id) == 1


def test_ambiguous_with_no_effect_keeps_the_lease_and_waits_it_out(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    standin.add_fault(FaultRule(kind="http_status", status=504, model="sale.order", method="create"))
    with pytest.raises(RetryLater) as later:
        h.runner.run(attempt(task_id))
    assert later.value.delay >= h.settings.effective_lease_seconds + 1
    assert h.statuses()[-1] == (3, TaskStatus.RETRYING)
    assert h.events[-1].error is not None and h.events[-1].error.code == "odoo_gateway_error"
    # A concurrent copy can't start while the write might still be running.
    assert store.acquire_lease(task_id, "other", h.now, 5) == pytest.approx(5)
    assert orders(standin, task_id) == 0
    h.now += 6  # the lease lapses; the retry goes through
    h.runner.run(attempt(task_id, 2))
    assert h.statuses()[-1] == (8, TaskStatus.SUCCEEDED) and orders(standin, task_id) == 1


def test_permanent_error_fails_once_with_the_reason(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    standin.add_fault(
        FaultRule(
            kind="error",
            error_name="odoo.exceptions.ValidationError",
            message="Customer is blocked",
            model="sale.order",
            method="create",
        )
    )
    with pytest.raises(TaskAbandoned):
        h.runner.run(attempt(task_id))
    last = h.events[-1]
    assert (last.seq, last.status) == (4, TaskStatus.FAILED)
    assert last.error is not None and "Customer is blocked" in last.error.message
    assert last.error.code == "odoo_validation_error"


def test_retries_exhausted_fail_the_task(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    standin.add_fault(FaultRule(kind="http_status", status=503, model="sale.order", method="create"))
    with pytest.raises(TaskAbandoned):
        h.runner.run(attempt(task_id, 3))
    assert h.statuses() == [(10, TaskStatus.RUNNING), (12, TaskStatus.FAILED)]
    assert h.events[-1].error is not None and h.events[-1].error.message.startswith("Gave up after 3 attempts")


def test_transient_error_retries_with_backoff(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    standin.add_fault(
        FaultRule(
            kind="error",
            error_name="psycopg2.errors.SerializationFailure",
            model="sale.order",
            method="create",
        )
    )
    with pytest.raises(RetryLater) as later:
        h.runner.run(attempt(task_id))
    assert later.value.delay == pytest.approx(backoff_seconds(2, 1, 4, lambda: 0.5))
    assert store.acquire_lease(task_id, "other", h.now, 5) is None  # nothing in flight: released


def test_final_task_in_store_is_not_run_again(standin: OdooStandin, store: TaskStore) -> None:
    """A redelivery after the final event was stored: nothing runs; the final event is
    published again, since the process may have died before publishing it."""
    h = Harness(standin, store)
    task_id = h.accept()
    final = TaskEvent(task_id=task_id, seq=4, status=TaskStatus.SUCCEEDED, attempt=1, result={"sale_order_id": 7})
    store.apply_event(final)
    before = len(standin.effects())
    h.runner.run(attempt(task_id))
    assert len(standin.effects()) == before
    assert [(e.seq, e.status, e.result) for e in h.events] == [(4, TaskStatus.SUCCEEDED, {"sale_order_id": 7})]


def test_redelivery_after_a_crash_waits_for_the_lease_then_finds_the_effect(
    standin: OdooStandin, store: TaskStore
) -> None:
    h = Harness(standin, store)
    task_id = h.accept()
    # Simulate a worker that died right after its write: the effect is in Odoo, its lease
    # is still held, and nothing was stored or published.
    KINDS["sale.order.create"].apply(OdooRpcClient(h.settings), task_reference(task_id), SALE)
    store.acquire_lease(task_id, "dead-worker", h.now, 5)
    again = Harness(standin, store)
    again.now = h.now
    again.runner.run(attempt(task_id))
    assert sum(again.slept) >= 5
    assert again.events[-1].status is TaskStatus.SUCCEEDED
    assert again.events[-1].result is not None and again.events[-1].result["already_applied"] is True
    assert orders(standin, task_id) == 1


def test_rejected_login_is_never_retried(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store, odoo_password="wrong")
    before = standin.login_attempts
    for _ in range(3):
        with pytest.raises(TaskAbandoned):
            h.runner.run(attempt(h.accept()))
    assert standin.login_attempts - before == 1
    assert h.events[-1].error is not None and h.events[-1].error.code == "odoo_login_rejected"


def test_inventory_conflict_wizard_fails_the_task(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    payload = {"location": "WH/Stock", "lines": [{"product": "DEMO-019", "quantity": 5.0}]}
    task_id = h.accept("inventory.adjust", payload)
    standin.mark_outdated("DEMO-019", "WH/Stock")
    try:
        with pytest.raises(TaskAbandoned):
            h.runner.run(attempt(task_id, kind="inventory.adjust", payload=payload))
    finally:
        standin.mark_outdated("DEMO-019", "WH/Stock", outdated=False)
    assert h.events[-1].error is not None and "stock.inventory.conflict" in h.events[-1].error.message


def test_backoff_is_capped_and_jittered() -> None:
    assert backoff_seconds(1, 1, 300, lambda: 0.0) == 0.5
    assert backoff_seconds(1, 1, 300, lambda: 1.0) == 1.0
    assert backoff_seconds(30, 1, 300, lambda: 1.0) == 300
    assert 150 <= backoff_seconds(30, 1, 300, lambda: 0.3) <= 300


def test_redelivered_attempt_that_ends_differently_is_not_a_duplicate(standin: OdooStandin, store: TaskStore) -> None:
    """Found by the chaos suite: attempt 1 said "retrying", then its worker died before the
    retry was queued; the redelivered attempt 1 said "succeeded". That must not be dropped
    as a duplicate of the first copy's outcome (it was, when both had seq 2n)."""
    h = Harness(standin, store)
    task = store.get(h.accept())
    assert task is not None
    # First copy: Odoo is busy, the attempt says "retrying"; then (in the scenario) it dies
    # before its retry is queued, so the same attempt is delivered again.
    standin.add_fault(FaultRule(kind="http_status", status=503, model="sale.order", method="create"))
    with pytest.raises(RetryLater):
        h.runner.run(attempt(task.id))
    for event in h.events:
        store.apply_event(event)
    assert store.get(task.id).status is TaskStatus.RETRYING  # type: ignore[union-attr]
    # The redelivery of the same attempt (same seq numbers) now gets through.
    h.now += 10
    redelivered = Harness(standin, store)
    redelivered.now = h.now
    redelivered.runner.run(attempt(task.id))
    for event in redelivered.events:
        store.apply_event(event)
    stored = store.get(task.id)
    assert stored is not None and stored.status is TaskStatus.SUCCEEDED
    assert orders(standin, task.id) == 1


def test_event_numbers() -> None:
    from shared.events import event_seq

    statuses = (TaskStatus.ACCEPTED, TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRYING)
    assert [event_seq(1, s) for s in statuses] == [0, 1, 2, 3]
    assert event_seq(1, TaskStatus.SUCCEEDED) == event_seq(1, TaskStatus.FAILED) == 4
    assert event_seq(2, TaskStatus.WAITING) == 5 and event_seq(2, TaskStatus.RUNNING) == 6
    # Whatever an attempt ends with comes after anything an earlier attempt said.
    assert event_seq(2, TaskStatus.RUNNING) > event_seq(1, TaskStatus.SUCCEEDED)
