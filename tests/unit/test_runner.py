"""The exactly-once attempt logic against the Odoo stand-in (real odoorpc over HTTP),
with a real SQLite store and the events captured instead of published."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from odoo_gateway_wire.statuses import TaskStatus
from shared.config import Settings
from shared.events import TaskEvent
from shared.kinds import KINDS, resource_keys, task_reference, validate_payload
from shared.store import NewTask, TaskStore, Waiter, open_store
from tests.odoo_standin import FaultRule, OdooStandin
from workers.odoo_client import OdooRpcClient
from workers.runner import (
    LOOKUP_SLACK_SECONDS,
    RetryLater,
    TaskAbandoned,
    TaskAttempt,
    TaskRunner,
    UntrustedMessage,
    backoff_seconds,
)

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
        self.woken: list[Waiter] = []
        self.slept: list[float] = []
        self.now = 1_000_000.0
        self.store = store
        self.runner = TaskRunner(
            self.settings,
            store,
            OdooRpcClient(self.settings),
            self.events.append,
            worker_id="worker@test",
            wake=self.woken.extend,
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
    assert later.value.delay >= h.settings.effective_lease_seconds + LOOKUP_SLACK_SECONDS + 1
    assert h.statuses()[-1] == (3, TaskStatus.RETRYING)
    assert h.events[-1].error is not None and h.events[-1].error.code == "odoo_gateway_error"
    # A concurrent copy can't start while the write might still be running: the write
    # began within the slack of the first lease, which holds until then (no renewal).
    assert store.acquire_lease(task_id, "other", h.now, 5) == pytest.approx(5 + LOOKUP_SLACK_SECONDS)
    assert orders(standin, task_id) == 0
    h.now += 6 + LOOKUP_SLACK_SECONDS  # the lease lapses; the retry goes through
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
    from odoo_gateway_wire.statuses import event_seq

    statuses = (TaskStatus.ACCEPTED, TaskStatus.WAITING, TaskStatus.RUNNING, TaskStatus.RETRYING)
    assert [event_seq(1, s) for s in statuses] == [0, 1, 2, 3]
    assert event_seq(1, TaskStatus.SUCCEEDED) == event_seq(1, TaskStatus.FAILED) == 4
    assert event_seq(2, TaskStatus.WAITING) == 5 and event_seq(2, TaskStatus.RUNNING) == 6
    # Whatever an attempt ends with comes after anything an earlier attempt said.
    assert event_seq(2, TaskStatus.RUNNING) > event_seq(1, TaskStatus.SUCCEEDED)


# --- one task at a time per Odoo record, in acceptance order (guarantee 9) ---------------


def count(product: str, quantity: float) -> dict[str, object]:
    return {"location": "WH/Stock", "lines": [{"product": product, "quantity": quantity}]}


def stock(standin: OdooStandin, product: str) -> float:
    product_id = next(p["id"] for p in standin.records("product.product") if p.get("default_code") == product)
    location_id = next(loc["id"] for loc in standin.records("stock.location") if loc.get("complete_name") == "WH/Stock")
    return sum(
        float(q["quantity"])
        for q in standin.records("stock.quant")
        if q["product_id"] == product_id and q["location_id"] == location_id
    )


def moves_of(standin: OdooStandin, task_id: str) -> list[dict[str, object]]:
    return [m for m in standin.records("stock.move") if str(m.get("name", "")).startswith(f"GW-{task_id}")]


def run_count(h: Harness, task_id: str, payload: dict[str, object], n: int = 1) -> None:
    h.runner.run(attempt(task_id, n, kind="inventory.adjust", payload=payload))


def test_a_newer_count_waits_without_writing_then_runs_when_woken(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    older, newer = count("DEMO-011", 31), count("DEMO-011", 47)
    a, b = h.accept("inventory.adjust", older), h.accept("inventory.adjust", newer)
    run_count(h, b, newer)  # its message happens to arrive first
    assert h.statuses() == [(1, TaskStatus.WAITING)]
    reason = h.events[0].error
    assert reason is not None and reason.code == "queued" and reason.blocked_by == a
    assert "stock.quant:WH/Stock|DEMO-011" in reason.message
    assert moves_of(standin, b) == [] and h.woken == []
    run_count(h, a, older)
    assert h.events[-1].status is TaskStatus.SUCCEEDED and h.events[-1].task_id == a
    assert [w.task_id for w in h.woken] == [b]  # the finisher hands the turn on at once
    run_count(h, b, newer)
    assert h.events[-1].status is TaskStatus.SUCCEEDED and h.events[-1].seq == 4  # waiting is no attempt
    assert len(moves_of(standin, a)) == len(moves_of(standin, b)) == 1
    assert stock(standin, "DEMO-011") == 47


def test_an_older_count_waiting_for_its_retry_is_not_overtaken(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    older, newer = count("DEMO-012", 5), count("DEMO-012", 9)
    a, b = h.accept("inventory.adjust", older), h.accept("inventory.adjust", newer)
    standin.add_fault(FaultRule(kind="http_status", status=503, model="stock.quant", method="action_apply_inventory"))
    with pytest.raises(RetryLater):
        run_count(h, a, older)
    run_count(h, b, newer)
    assert h.statuses()[-1] == (1, TaskStatus.WAITING) and moves_of(standin, b) == []
    h.now += 5
    run_count(h, a, older, n=2)
    assert [w.task_id for w in h.woken] == [b]
    run_count(h, b, newer)
    assert stock(standin, "DEMO-012") == 9  # the newer count is the last word
    assert len(moves_of(standin, a)) == len(moves_of(standin, b)) == 1


def test_a_blocker_that_fails_releases_the_next_task(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    older, newer = count("DEMO-013", 3), count("DEMO-013", 4)
    a, b = h.accept("inventory.adjust", older), h.accept("inventory.adjust", newer)
    assert store.take_turn(b, 1, h.now).blocked_by == a
    standin.mark_outdated("DEMO-013", "WH/Stock")
    try:
        with pytest.raises(TaskAbandoned):
            run_count(h, a, older)
    finally:
        standin.mark_outdated("DEMO-013", "WH/Stock", outdated=False)
    assert h.events[-1].status is TaskStatus.FAILED
    assert [w.task_id for w in h.woken] == [b]


def test_a_task_with_several_keys_waits_for_each_and_nothing_deadlocks(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    two = {
        "location": "WH/Stock",
        "lines": [{"product": "DEMO-014", "quantity": 1}, {"product": "DEMO-015", "quantity": 2}],
    }
    first, both, last = count("DEMO-015", 8), two, count("DEMO-014", 6)
    a, b, c = (h.accept("inventory.adjust", p) for p in (first, both, last))
    run_count(h, c, last)  # behind b (DEMO-014), which is behind a (DEMO-015)
    run_count(h, b, both)
    assert [e.error.blocked_by for e in h.events if e.error] == [b, a]
    run_count(h, a, first)
    assert [w.task_id for w in h.woken] == [b]  # c is still behind b
    run_count(h, b, both)
    assert [w.task_id for w in h.woken] == [b, c]
    run_count(h, c, last)
    assert (stock(standin, "DEMO-014"), stock(standin, "DEMO-015")) == (6, 2)


def test_the_sweeper_wakes_a_task_whose_waker_died(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    a, b = h.accept("inventory.adjust", count("DEMO-016", 1)), h.accept("inventory.adjust", count("DEMO-016", 2))
    run_count(h, b, count("DEMO-016", 2))
    # a's worker stored its final event and died before waking anyone.
    store.apply_event(TaskEvent(task_id=a, seq=4, status=TaskStatus.SUCCEEDED, attempt=1))
    assert h.woken == []
    assert h.runner.sweep() == 1 and [w.task_id for w in h.woken] == [b]
    assert h.runner.sweep() == 0  # claimed: not sent twice while it is on its way


def test_a_count_equal_to_the_stock_is_an_explicit_no_op(standin: OdooStandin, store: TaskStore) -> None:
    h = Harness(standin, store)
    first = count("DEMO-017", 12)
    run_count(h, h.accept("inventory.adjust", first), first)
    same = h.accept("inventory.adjust", first)
    run_count(h, same, first)
    result = h.events[-1].result
    assert h.events[-1].status is TaskStatus.SUCCEEDED and result is not None
    assert result["changed"] is False and result["unchanged_products"] == ["DEMO-017"]
    # Odoo records a confirmed count as a move of quantity 0 under the count's name.
    assert [m["product_uom_qty"] for m in moves_of(standin, same)] in ([], [0.0])
    assert stock(standin, "DEMO-017") == 12


def test_concurrent_counts_of_one_product_never_interleave(standin: OdooStandin, store: TaskStore) -> None:
    """The field report: two workers ran counts of the same quant between each other's two
    Odoo calls, so one task's move carried the other's count and the other 'succeeded'
    with no move. Here two runners start at once, with Odoo slow to apply."""
    h1, h2 = Harness(standin, store), Harness(standin, store)
    older, newer = count("DEMO-018", 70), count("DEMO-018", 80)
    a, b = h1.accept("inventory.adjust", older), h1.accept("inventory.adjust", newer)
    before = stock(standin, "DEMO-018")
    standin.add_fault(
        FaultRule(kind="delay", model="stock.quant", method="action_apply_inventory", seconds=0.5, times=2)
    )
    threads = [
        threading.Thread(target=run_count, args=(h1, a, older)),
        threading.Thread(target=run_count, args=(h2, b, newer)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for waiter in [*h1.woken, *h2.woken]:
        run_count(h1, waiter.task_id, waiter.payload)  # type: ignore[arg-type]
    finals = {e.task_id: e for e in [*h1.events, *h2.events] if e.status.final}
    assert set(finals) == {a, b} and all(e.status is TaskStatus.SUCCEEDED for e in finals.values())
    # Each move carries its own task's count: 70 first, then 80.
    assert [m["product_uom_qty"] for m in moves_of(standin, a)] == [abs(70 - before)]
    assert [m["product_uom_qty"] for m in moves_of(standin, b)] == [10]
    assert stock(standin, "DEMO-018") == 80


def test_a_message_for_an_unknown_task_is_never_applied(standin: OdooStandin, store: TaskStore) -> None:
    from workers.anomalies import anomaly_counts

    h = Harness(standin, store)
    before = dict(anomaly_counts())
    effects = len(standin.effects())
    with pytest.raises(UntrustedMessage):
        h.runner.run(attempt(str(uuid.uuid4())))
    task_id = h.accept()
    forged = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 999.0}]}
    with pytest.raises(UntrustedMessage):
        h.runner.run(attempt(task_id, payload=forged))
    assert len(standin.effects()) == effects and h.events == []
    after = anomaly_counts()
    assert after.get("unknown_task", 0) == before.get("unknown_task", 0) + 1
    assert after.get("message_mismatch", 0) == before.get("message_mismatch", 0) + 1
