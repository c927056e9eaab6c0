"""One contract, two stores: SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.errors import StoreUnavailable
from shared.events import ErrorInfo, TaskEvent, TaskStatus
from shared.store import NewTask, TaskStore, open_store

NOW = 1_800_000_000.0


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TaskStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    else:
        url = request.getfixturevalue("pg_url")
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
