"""One contract, two stores: SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from odoo_gateway_wire.statuses import TaskStatus
from shared.errors import StoreUnavailable
from shared.events import ErrorInfo, TaskEvent
from shared.store import NewTask, TaskStore, open_store

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        url = request.getfixturevalue("store_pg_url")
    store = open_store(url)
    yield store
    store.close()


def new_task(principal: str = "demo", key: str | None = None, fingerprint: str = "fp") -> NewTask:
    return NewTask(
        id=str(uuid.uuid4()),
        principal=principal,
        idempotency_key=key or str(uuid.uuid4()),
        fingerprint=fingerprint,
        kind="sale.order.create",
        payload={"customer": "C", "lines": [{"product": "P", "quantity": 1.0}]},
    )


def event(task_id: str, seq: int, status: TaskStatus, **kw: object) -> TaskEvent:
    return TaskEvent(task_id=task_id, seq=seq, status=status, attempt=(seq + 1) // 2, at=NOW + seq, **kw)  # type: ignore[arg-type]


def test_create_is_idempotent_per_principal_and_key(store: TaskStore) -> None:
    first = new_task(key="k1")
    task, created = store.create_or_get(first, NOW, 10)
    again, created_again = store.create_or_get(new_task(key="k1", fingerprint="other"), NOW, 10)
    theirs, created_theirs = store.create_or_get(new_task(principal="other", key="k1"), NOW, 10)
    assert created and not created_again and created_theirs
    assert task.id == again.id == first.id and theirs.id != first.id
    assert again.fingerprint == "fp"  # the stored one, so the caller can compare
    assert task.status is TaskStatus.ACCEPTED and task.seq == 0 and not task.published
    assert [(e.seq, e.status) for e in store.events_after(task.id, -1)] == [(0, TaskStatus.ACCEPTED)]


def test_concurrent_creates_with_one_key_make_one_task(store: TaskStore) -> None:
    key = str(uuid.uuid4())
    results: list[tuple[str, bool]] = []

    def create() -> None:
        task, created = store.create_or_get(new_task(key=key), time.time(), 10)
        results.append((task.id, created))

    threads = [threading.Thread(target=create) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({task_id for task_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_publish_claim_is_exclusive_until_released_or_expired(store: TaskStore) -> None:
    task, _ = store.create_or_get(new_task(), NOW, 10)
    # Creating claimed the publish: a concurrent replay can't, until the claim lapses.
    assert not store.claim_publish(task.id, NOW + 1, 10)
    assert store.claim_publish(task.id, NOW + 11, 10)  # the first claimant died
    store.release_publish_claim(task.id)
    assert store.claim_publish(task.id, NOW + 12, 10)
    store.mark_published(task.id, NOW + 13)
    assert not store.claim_publish(task.id, NOW + 100, 10)
    stored = store.get(task.id)
    assert stored is not None and stored.published_at == NOW + 13


def test_events_apply_in_order_once_and_final_is_final(store: TaskStore) -> None:
    task, _ = store.create_or_get(new_task(), NOW, 10)
    assert store.apply_event(event(task.id, 1, TaskStatus.RUNNING))
    assert not store.apply_event(event(task.id, 1, TaskStatus.RUNNING))  # duplicate
    retry = ErrorInfo(code="odoo_concurrency", message="busy", retry_in_seconds=1.5)
    assert store.apply_event(event(task.id, 2, TaskStatus.RETRYING, error=retry))
    assert store.apply_event(event(task.id, 4, TaskStatus.SUCCEEDED, result={"sale_order_id": 7}))
    assert not store.apply_event(event(task.id, 3, TaskStatus.RUNNING))  # late: history only
    assert not store.apply_event(event(task.id, 6, TaskStatus.FAILED))  # after final
    stored = store.get(task.id)
    assert stored is not None
    assert (stored.status, stored.seq, stored.attempts, stored.result) == (
        TaskStatus.SUCCEEDED,
        4,
        2,
        {"sale_order_id": 7},
    )
    assert stored.error is None
    history = store.events_after(task.id, 0)
    assert [(e.seq, e.status) for e in history] == [
        (1, TaskStatus.RUNNING),
        (2, TaskStatus.RETRYING),
        (3, TaskStatus.RUNNING),
        (4, TaskStatus.SUCCEEDED),
    ]
    assert history[1].error == retry
    assert [e.seq for e in store.events_after(task.id, 2)] == [3, 4]


def test_resume_reads_many_at_once_match_one_by_one(store: TaskStore) -> None:
    """What a resume reads (task_and_events_many, the grouped read of a resume storm) is
    what task_and_events reads for each: unknown and foreign tasks without events, limits
    per ask, a task asked twice from two points."""
    tasks = [store.create_or_get(new_task(principal), NOW, 10)[0] for principal in ("demo", "demo", "other")]
    for seq, status in ((1, TaskStatus.RUNNING), (2, TaskStatus.RETRYING), (3, TaskStatus.RUNNING)):
        store.apply_event(event(tasks[0].id, seq, status))
        store.apply_event(event(tasks[2].id, seq, status))
    asks = [
        (tasks[0].id, "demo", 0, 100),
        (tasks[0].id, "demo", 1, 1),
        (tasks[1].id, "demo", 0, 100),
        (tasks[2].id, "demo", 0, 100),  # another principal's: no events
        (tasks[0].id, "demo", 0, 0),  # no events asked
        (str(uuid.uuid4()), "demo", 0, 100),
    ]
    many = store.task_and_events_many(asks)
    assert many == [store.task_and_events(*ask) for ask in asks]
    assert [[e.seq for e in events] for _, events in many] == [[1, 2, 3], [2], [], [], [], []]
    assert [task.id if task else None for task, _ in many] == [
        tasks[0].id,
        tasks[0].id,
        tasks[1].id,
        tasks[2].id,
        tasks[0].id,
        None,
    ]


def test_event_for_unknown_task_is_not_stored(store: TaskStore) -> None:
    ghost = str(uuid.uuid4())
    assert not store.apply_event(event(ghost, 1, TaskStatus.RUNNING))
    assert store.events_after(ghost, -1) == []
    assert store.get(ghost) is None


def test_lease_is_single_holder_renewable_and_expires(store: TaskStore) -> None:
    task_id = str(uuid.uuid4())
    assert store.acquire_lease(task_id, "a", NOW, 10) is None
    assert store.acquire_lease(task_id, "b", NOW + 1, 10) == pytest.approx(9)
    assert store.acquire_lease(task_id, "a", NOW + 5, 10) is None  # renewal by the holder
    assert store.acquire_lease(task_id, "b", NOW + 11, 10) == pytest.approx(4)
    assert store.acquire_lease(task_id, "b", NOW + 15.5, 10) is None  # lapsed: taken over
    store.release_lease(task_id, "a")  # not the holder any more: no effect
    assert store.acquire_lease(task_id, "a", NOW + 16, 10) is not None
    store.release_lease(task_id, "b")
    assert store.acquire_lease(task_id, "a", NOW + 16, 10) is None


def test_purge_releases_keys_and_prunes_final_histories(store: TaskStore) -> None:
    old, _ = store.create_or_get(new_task(key="old-key"), NOW, 10)
    store.apply_event(event(old.id, 2, TaskStatus.SUCCEEDED, result={"x": 1}))
    running, _ = store.create_or_get(new_task(), NOW, 10)
    store.apply_event(event(running.id, 1, TaskStatus.RUNNING))
    day = 86400.0
    report = store.purge(NOW + 8 * day, key_window=7 * day, history_window=7 * day)
    assert report.keys_released >= 2 and report.histories_pruned >= 1
    pruned = store.get(old.id)
    assert pruned is not None and pruned.history_pruned and pruned.payload is None
    assert pruned.status is TaskStatus.SUCCEEDED and pruned.result == {"x": 1}
    assert store.events_after(old.id, 0) == []
    kept = store.get(running.id)
    assert kept is not None and not kept.history_pruned  # not final: history kept
    # The key is free again: a new submission with it is a new task.
    fresh, created = store.create_or_get(new_task(key="old-key"), NOW + 8 * day, 10)
    assert created and fresh.id != old.id


def test_unreachable_store_raises_store_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable):
        open_store("postgresql://postgres@127.0.0.1:1/none")
    blocked = tmp_path / "file"
    blocked.write_text("not a directory")
    with pytest.raises(StoreUnavailable):
        open_store(f"sqlite:///{blocked}/store.sqlite3")


# --- per-record order (guarantee 9) --------------------------------------------------------


class Products:
    """Product codes unique to one test: the PostgreSQL store is shared by the session."""

    def __init__(self) -> None:
        self.prefix = uuid.uuid4().hex[:8]

    def __call__(self, *codes: str, key: str | None = None) -> NewTask:
        return count_task(*(f"{self.prefix}-{c}" for c in codes), key=key)

    def key(self, code: str) -> str:
        return f"stock.quant:WH/Stock|{self.prefix}-{code}"


@pytest.fixture
def counts() -> Products:
    return Products()


def count_task(*keys: str, key: str | None = None) -> NewTask:
    return NewTask(
        id=str(uuid.uuid4()),
        principal="demo",
        idempotency_key=key or str(uuid.uuid4()),
        fingerprint="fp",
        kind="inventory.adjust",
        payload={"location": "WH/Stock", "lines": [{"product": k, "quantity": 1.0} for k in keys]},
        resource_keys=tuple(f"stock.quant:WH/Stock|{k}" for k in keys),
    )


def accepted(store: TaskStore, new: NewTask, now: float = NOW) -> str:
    task, created = store.create_or_get(new, now, 10)
    assert created
    store.mark_published(task.id, now)
    return task.id


def test_acceptance_order_grows_and_keys_are_stored(store: TaskStore, counts: Products) -> None:
    first = store.create_or_get(counts("A", "B"), NOW, 10)[0]
    second = store.create_or_get(new_task(), NOW, 10)[0]
    third = store.create_or_get(counts("A"), NOW, 10)[0]
    assert 0 < first.accept_order < second.accept_order < third.accept_order
    assert first.resource_keys == (counts.key("A"), counts.key("B"))
    assert second.resource_keys == ()
    replay, created = store.create_or_get(counts("A", key=first.idempotency_key), NOW, 10)
    assert not created and replay.accept_order == first.accept_order


def test_a_task_waits_for_every_older_task_on_a_shared_key(store: TaskStore, counts: Products) -> None:
    a = accepted(store, counts("A"))
    b = accepted(store, counts("A", "B"))
    c = accepted(store, counts("B"))
    free = accepted(store, counts("Z"))
    assert store.take_turn(a, 1, NOW).ready
    assert store.take_turn(free, 1, NOW).ready
    turn_b = store.take_turn(b, 1, NOW)
    assert turn_b.blocked_by == a and turn_b.blocked_keys == (counts.key("A"),)
    # c shares only B with b, and b is older and not final: c waits too (no overtaking).
    assert store.take_turn(c, 1, NOW).blocked_by == b
    # Nothing is woken while a runs.
    assert store.wake_waiters(NOW, keys=(counts.key("A"),)) == []
    store.apply_event(event(a, 4, TaskStatus.FAILED, error=ErrorInfo(code="x", message="y")))
    woken = store.wake_waiters(NOW + 1, keys=(counts.key("A"),))
    assert [(w.task_id, w.kind, w.attempt) for w in woken] == [(b, "inventory.adjust", 1)]
    assert woken[0].payload["lines"][0]["product"] == f"{counts.prefix}-A"
    assert store.wake_waiters(NOW + 1, keys=(counts.key("A"), counts.key("B"))) == []  # c is behind b
    assert store.take_turn(b, 1, NOW + 1).ready
    store.apply_event(event(b, 4, TaskStatus.SUCCEEDED))
    assert [w.task_id for w in store.wake_waiters(NOW + 2, keys=(counts.key("B"),))] == [c]


def test_a_woken_task_that_never_ran_is_woken_again_later(store: TaskStore, counts: Products) -> None:
    a = accepted(store, counts("A"))
    b = accepted(store, counts("A"))
    assert store.take_turn(a, 1, NOW).ready
    assert not store.take_turn(b, 2, NOW).ready
    store.apply_event(event(a, 4, TaskStatus.SUCCEEDED))
    mine = (counts.key("A"),)
    assert [w.attempt for w in store.wake_waiters(NOW, keys=mine, rewake_after=30)] == [2]
    assert store.wake_waiters(NOW + 10, keys=mine, rewake_after=30) == []
    assert [w.task_id for w in store.wake_waiters(NOW + 31, keys=mine, rewake_after=30)] == [b]


def test_a_never_acknowledged_task_blocks_nobody_and_a_replay_goes_to_the_end(
    store: TaskStore, counts: Products
) -> None:
    orphan, _ = store.create_or_get(counts("A"), NOW, 10)  # publish failed, claim held 10 s
    later = accepted(store, counts("A"))
    assert store.take_turn(later, 1, NOW).blocked_by == orphan.id  # it may still be acknowledged
    assert store.take_turn(later, 1, NOW + 11).ready  # its claim ran out: never acknowledged
    # The client replays it: it is accepted now, behind the task accepted meanwhile.
    assert store.claim_publish(orphan.id, NOW + 12, 10)
    replayed = store.get(orphan.id)
    assert replayed is not None and replayed.accept_order > store.get(later).accept_order  # type: ignore[union-attr]
    assert store.take_turn(orphan.id, 1, NOW + 12).blocked_by == later


def test_begin_attempt_takes_lease_turn_and_running_at_once(store: TaskStore, counts: Products) -> None:
    a = accepted(store, counts("A"))
    b = accepted(store, counts("A"))
    begun = store.begin_attempt(a, "w1", 1, NOW, 10, event(a, 2, TaskStatus.RUNNING))
    assert begun.lease_wait is None and begun.turn.ready
    stored = store.get(a)
    assert stored is not None and (stored.status, stored.seq) == (TaskStatus.RUNNING, 2)
    assert [e.seq for e in store.events_after(a, 0)] == [2]
    # Another holder's lease: nothing else is done, and the wait is reported.
    again = store.begin_attempt(a, "w2", 1, NOW + 1, 10, event(a, 2, TaskStatus.RUNNING))
    assert again.lease_wait == pytest.approx(9)
    # Its turn has not come: parked, leased, and no running event stored.
    parked = store.begin_attempt(b, "w3", 1, NOW, 10, event(b, 2, TaskStatus.RUNNING))
    assert parked.lease_wait is None and parked.turn.blocked_by == a
    assert store.events_after(b, 0) == [] and store.acquire_lease(b, "w4", NOW, 10) == pytest.approx(10)


def test_finish_attempt_stores_the_final_event_and_releases_the_lease(store: TaskStore, counts: Products) -> None:
    a = accepted(store, counts("A"))
    assert store.begin_attempt(a, "w1", 1, NOW, 10, event(a, 2, TaskStatus.RUNNING)).turn.ready
    assert store.finish_attempt(event(a, 4, TaskStatus.SUCCEEDED), "w1")
    stored = store.get(a)
    assert stored is not None and stored.status is TaskStatus.SUCCEEDED
    assert store.acquire_lease(a, "other", NOW + 1, 10) is None  # released with it
    assert not store.finish_attempt(event(a, 4, TaskStatus.SUCCEEDED), "other")  # a duplicate
    # Without an owner (a write may still run in Odoo) the lease stays.
    b = accepted(store, counts("B"))
    assert store.begin_attempt(b, "w1", 1, NOW, 10, event(b, 2, TaskStatus.RUNNING)).turn.ready
    assert store.finish_attempt(event(b, 4, TaskStatus.FAILED, error=ErrorInfo(code="x", message="y")), None)
    assert store.acquire_lease(b, "other", NOW + 1, 10) == pytest.approx(9)


def test_take_turn_records_that_the_message_was_published(store: TaskStore, counts: Products) -> None:
    task, _ = store.create_or_get(counts("A"), NOW, 10)
    assert store.take_turn(task.id, 1, NOW + 1).ready
    stored = store.get(task.id)
    assert stored is not None and stored.published  # so a replay never publishes it again
    assert not store.claim_publish(task.id, NOW + 100, 10)


def test_concurrent_acceptances_on_one_key_commit_in_their_order(store: TaskStore, counts: Products) -> None:
    """Whatever the interleaving of acceptances, a worker never sees a task while an older
    one on the same key is still to commit: checked by taking turns while others accept."""
    ids: list[str] = []
    lock = threading.Lock()

    def accept_many() -> None:
        for _ in range(15):
            task_id = accepted(store, counts("HOT", "COLD-" + uuid.uuid4().hex[:4]))
            with lock:
                ids.append(task_id)

    threads = [threading.Thread(target=accept_many) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tasks = sorted((store.get(i) for i in ids), key=lambda t: t.accept_order)  # type: ignore[union-attr]
    assert len({t.accept_order for t in tasks}) == 60  # type: ignore[union-attr]
    # Exactly one may run at a time, the oldest; finishing it hands the turn to the next.
    for index, task in enumerate(tasks):
        assert task is not None
        ready = [t.id for t in tasks[index:] if t is not None and store.take_turn(t.id, 1, NOW).ready]
        assert ready == [task.id]
        store.apply_event(event(task.id, 4, TaskStatus.SUCCEEDED))


def test_a_group_commit_creates_in_list_order_dedupes_and_marks(store: TaskStore, counts: Products) -> None:
    earlier = store.create_or_get(new_task(), NOW, 10)[0]
    first, second = counts("Z", "A"), counts("A")
    duplicate = counts("A", key=first.idempotency_key)
    results = store.accept_batch([first, second, duplicate], [earlier.id], NOW, 10)
    (one, created_one), (two, created_two), (three, created_three) = results
    assert (created_one, created_two, created_three) == (True, True, False)
    assert one.accept_order < two.accept_order and three.id == one.id  # the duplicate gets the first
    assert store.get(earlier.id).published  # type: ignore[union-attr]
    assert not store.get(one.id).published  # type: ignore[union-attr]
    assert store.accept_batch([], [one.id], NOW, 10) == []
    assert store.get(one.id).published  # type: ignore[union-attr]


def test_concurrent_group_commits_on_shared_keys_do_not_deadlock(store: TaskStore, counts: Products) -> None:
    # Keys in opposite orders across batches: locks are taken for the whole batch, in one order.
    errors: list[BaseException] = []

    def batch(names: list[str]) -> None:
        try:
            for _ in range(10):
                store.accept_batch([counts(n) for n in names], [], time.time(), 10)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=batch, args=(names,)) for names in (["A", "B", "C"], ["C", "B", "A"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []


# --- failed-task operations ------------------------------------------------------------------


def failed(store: TaskStore, new: NewTask, attempt: int = 2, now: float = NOW) -> str:
    task_id = accepted(store, new, now)
    store.apply_event(event(task_id, 4 * attempt - 2, TaskStatus.RUNNING))
    store.apply_event(
        TaskEvent(
            task_id=task_id,
            seq=4 * attempt,
            status=TaskStatus.FAILED,
            attempt=attempt,
            error=ErrorInfo(code="odoo_unavailable", message="down"),
            at=now + attempt,
        )
    )
    return task_id


def test_failed_tasks_are_listed_per_principal_newest_first(store: TaskStore) -> None:
    tenant = f"t-{uuid.uuid4().hex[:8]}"
    first = failed(store, new_task(principal=tenant), now=NOW)
    second = failed(store, new_task(principal=tenant), now=NOW + 10)
    theirs = failed(store, new_task(principal=f"{tenant}-other"), now=NOW + 20)
    succeeded = accepted(store, new_task(principal=tenant))
    store.apply_event(event(succeeded, 4, TaskStatus.SUCCEEDED))
    assert [t.id for t in store.list_failed(tenant)] == [second, first]
    assert [t.id for t in store.list_failed(tenant, limit=1)] == [second]
    assert [t.id for t in store.list_failed(tenant, before=NOW + 10)] == [first]
    everyone = [t.id for t in store.list_failed(None, limit=1000)]
    assert {first, second, theirs} <= set(everyone) and succeeded not in everyone


def test_reopen_keeps_seq_and_attempts_increasing_and_takes_a_new_place(store: TaskStore, counts: Products) -> None:
    task_id = failed(store, counts("A"), attempt=2)  # seq 8, attempt 2
    later = accepted(store, counts("A"))  # accepted while the first one had failed
    reopened = store.reopen(task_id, NOW + 100, 10)
    assert reopened is not None and reopened.event is not None
    assert (reopened.event.status, reopened.event.seq, reopened.event.attempt) == (TaskStatus.RETRYING, 11, 3)
    assert reopened.event.error is not None and reopened.event.error.code == "reopened"
    assert reopened.attempt == 4  # its next run: seqs 13..16, above everything so far
    task = reopened.task
    assert (task.status, task.seq, task.attempts, task.attempt_base) == (TaskStatus.RETRYING, 11, 3, 3)
    assert task.error is not None and not task.published and task.result is None
    assert [(e.seq, e.status) for e in store.events_after(task_id, 7)] == [
        (8, TaskStatus.FAILED),
        (11, TaskStatus.RETRYING),
    ]
    # Only once: a second reopen of the same failure, or a reopen of what is not failed, is refused.
    assert store.reopen(task_id, NOW + 101, 10) is None
    assert store.reopen(later, NOW + 101, 10) is None
    assert store.reopen(str(uuid.uuid4()), NOW + 101, 10) is None
    # Back in line behind the task accepted meanwhile on the same record.
    assert store.take_turn(later, 1, NOW + 102).ready
    assert store.take_turn(task_id, 4, NOW + 102).blocked_by == later
    # The next run's events apply on top; its success is final.
    store.apply_event(event(later, 4, TaskStatus.SUCCEEDED))
    assert store.take_turn(task_id, 4, NOW + 103).ready
    assert store.apply_event(TaskEvent(task_id=task_id, seq=14, status=TaskStatus.RUNNING, attempt=4, at=NOW + 104))
    assert store.apply_event(TaskEvent(task_id=task_id, seq=16, status=TaskStatus.SUCCEEDED, attempt=4, at=NOW + 105))
    assert [e.seq for e in store.events_after(task_id, 0)] == [6, 8, 11, 14, 16]
    assert store.get(task_id).status is TaskStatus.SUCCEEDED  # type: ignore[union-attr]


def test_a_reopen_whose_publish_failed_is_claimed_again_without_a_new_event(store: TaskStore) -> None:
    task_id = failed(store, new_task())
    first = store.reopen(task_id, NOW + 100, 10)
    assert first is not None and first.event is not None
    assert store.reopen(task_id, NOW + 105, 10) is None  # its claim is live: being published
    store.release_publish_claim(task_id)  # the publish failed
    again = store.reopen(task_id, NOW + 106, 10)
    assert again is not None and again.event is None and again.attempt == first.attempt
    store.mark_published(task_id, NOW + 107)
    assert store.reopen(task_id, NOW + 200, 10) is None  # published: nothing to do


def test_a_task_whose_history_was_pruned_is_not_reopened(store: TaskStore) -> None:
    task_id = failed(store, new_task())
    day = 86400.0
    store.purge(NOW + 40 * day, key_window=7 * day, history_window=30 * day)
    assert store.reopen(task_id, NOW + 40 * day, 10) is None
