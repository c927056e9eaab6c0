"""The task store in portable SQL (SQLite >= 3.24 and PostgreSQL >= 9.5 both run it).

Statements are written with ``?`` placeholders; a dialect translates them. Each public
method is one transaction. Atomicity comes from single conditional statements
(``INSERT … ON CONFLICT``, ``UPDATE … WHERE seq < ?``), not from locks held across calls.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from shared.events import ErrorInfo, TaskEvent, TaskStatus
from shared.store.base import TaskStore
from shared.store.records import NewTask, PurgeReport, TaskRecord

__all__ = ["Cursor", "SqlTaskStore"]

_TASK_COLUMNS = (
    "id, principal, idem_key, fingerprint, kind, payload, status, seq, attempts, result, "
    "error, created_at, updated_at, published_at, history_pruned"
)
_FINAL = tuple(s.value for s in (TaskStatus.SUCCEEDED, TaskStatus.FAILED))


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _loads(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _task(row: Sequence[Any]) -> TaskRecord:
    error = _loads(row[10])
    return TaskRecord(
        id=row[0],
        principal=row[1],
        idempotency_key=row[2],
        fingerprint=row[3],
        kind=row[4],
        payload=_loads(row[5]),
        status=TaskStatus(row[6]),
        seq=int(row[7]),
        attempts=int(row[8]),
        result=_loads(row[9]),
        error=ErrorInfo.model_validate(error) if error else None,
        created_at=float(row[11]),
        updated_at=float(row[12]),
        published_at=None if row[13] is None else float(row[13]),
        history_pruned=bool(row[14]),
    )


class SqlTaskStore(TaskStore):
    @abc.abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        """One transaction; commits on success, rolls back on error, and turns driver
        errors into StoreUnavailable."""
        yield NotImplemented

    @abc.abstractmethod
    def _ddl(self) -> list[str]: ...

    def migrate(self) -> None:
        with self._transaction() as cur:
            for statement in self._ddl():
                cur.execute(statement)

    def ping(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def create_or_get(self, new: NewTask, now: float, claim_ttl: float) -> tuple[TaskRecord, bool]:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO tasks (id, principal, idem_key, fingerprint, kind, payload, status, "
                "seq, attempts, created_at, updated_at, publish_claim_until, history_pruned) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, 0) "
                "ON CONFLICT (principal, idem_key) DO NOTHING",
                (
                    new.id,
                    new.principal,
                    new.idempotency_key,
                    new.fingerprint,
                    new.kind,
                    _dumps(new.payload),
                    TaskStatus.ACCEPTED.value,
                    now,
                    now,
                    now + claim_ttl,
                ),
            )
            created = cur.rowcount == 1
            if created:
                cur.execute(
                    "INSERT INTO task_events (task_id, seq, status, attempt, result, error, at) "
                    "VALUES (?, 0, ?, 0, NULL, NULL, ?)",
                    (new.id, TaskStatus.ACCEPTED.value, now),
                )
            cur.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE principal = ? AND idem_key = ?",
                (new.principal, new.idempotency_key),
            )
            return _task(cur.fetchone()), created

    def claim_publish(self, task_id: str, now: float, ttl: float) -> bool:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE tasks SET publish_claim_until = ? WHERE id = ? AND published_at IS NULL "
                "AND (publish_claim_until IS NULL OR publish_claim_until < ?)",
                (now + ttl, task_id, now),
            )
            return cur.rowcount == 1

    def _skip_fsync(self, cur: Cursor) -> None:
        """For writes whose loss in a crash is harmless: do not wait for them to be on disk."""

    def mark_published(self, task_id: str, now: float) -> None:
        with self._transaction() as cur:
            # Losing this mark in a crash costs at most one more publish of a task the
            # workers will find already done; waiting for its fsync would cost every ack.
            self._skip_fsync(cur)
            cur.execute(
                "UPDATE tasks SET published_at = ?, publish_claim_until = NULL WHERE id = ?",
                (now, task_id),
            )

    def release_publish_claim(self, task_id: str) -> None:
        with self._transaction() as cur:
            cur.execute("UPDATE tasks SET publish_claim_until = NULL WHERE id = ?", (task_id,))

    def get(self, task_id: str) -> TaskRecord | None:
        with self._transaction() as cur:
            cur.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
            row = cur.fetchone()
            return None if row is None else _task(row)

    def events_after(self, task_id: str, after_seq: int, limit: int = 1000) -> list[TaskEvent]:
        with self._transaction() as cur:
            cur.execute(
                "SELECT task_id, seq, status, attempt, result, error, at FROM task_events "
                "WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (task_id, after_seq, limit),
            )
            return [
                TaskEvent(
                    task_id=row[0],
                    seq=int(row[1]),
                    status=TaskStatus(row[2]),
                    attempt=int(row[3]),
                    result=_loads(row[4]),
                    error=_loads(row[5]),
                    at=float(row[6]),
                )
                for row in cur.fetchall()
            ]

    def apply_event(self, event: TaskEvent) -> bool:
        result = _dumps(event.result)
        error = _dumps(event.error.model_dump() if event.error else None)
        with self._transaction() as cur:
            cur.execute(
                "UPDATE tasks SET status = ?, seq = ?, attempts = ?, result = ?, error = ?, "
                "updated_at = ? WHERE id = ? AND seq < ? AND status NOT IN (?, ?)",
                (
                    event.status.value,
                    event.seq,
                    event.attempt,
                    result,
                    error,
                    event.at,
                    event.task_id,
                    event.seq,
                    *_FINAL,
                ),
            )
            if cur.rowcount != 1:
                # A duplicate, an event after the final one, or a late one (the relay may
                # store a task's events out of order): a late event still belongs in the
                # history, so a resume from before it gets the whole story.
                cur.execute(
                    "INSERT INTO task_events (task_id, seq, status, attempt, result, error, at) "
                    "SELECT ?, ?, ?, ?, ?, ?, ? WHERE EXISTS "
                    "(SELECT 1 FROM tasks WHERE id = ? AND seq > ?) "
                    "ON CONFLICT (task_id, seq) DO NOTHING",
                    (
                        event.task_id,
                        event.seq,
                        event.status.value,
                        event.attempt,
                        result,
                        error,
                        event.at,
                        event.task_id,
                        event.seq,
                    ),
                )
                return False
            cur.execute(
                "INSERT INTO task_events (task_id, seq, status, attempt, result, error, at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, seq) DO NOTHING",
                (event.task_id, event.seq, event.status.value, event.attempt, result, error, event.at),
            )
            return True

    def acquire_lease(self, task_id: str, owner: str, now: float, ttl: float) -> float | None:
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO task_leases (task_id, owner, until) VALUES (?, ?, ?) "
                "ON CONFLICT (task_id) DO UPDATE SET owner = excluded.owner, "
                "until = excluded.until "
                "WHERE task_leases.until < ? OR task_leases.owner = excluded.owner",
                (task_id, owner, now + ttl, now),
            )
            if cur.rowcount == 1:
                return None
            cur.execute("SELECT until FROM task_leases WHERE task_id = ?", (task_id,))
            row = cur.fetchone()
            return None if row is None else max(0.0, float(row[0]) - now)

    def release_lease(self, task_id: str, owner: str) -> None:
        with self._transaction() as cur:
            cur.execute("DELETE FROM task_leases WHERE task_id = ? AND owner = ?", (task_id, owner))

    def purge(self, now: float, key_window: float, history_window: float) -> PurgeReport:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE tasks SET idem_key = NULL WHERE idem_key IS NOT NULL AND created_at < ?",
                (now - key_window,),
            )
            keys = cur.rowcount
            cur.execute(
                "DELETE FROM task_events WHERE task_id IN (SELECT id FROM tasks "
                "WHERE status IN (?, ?) AND updated_at < ? AND history_pruned = 0)",
                (*_FINAL, now - history_window),
            )
            cur.execute(
                "UPDATE tasks SET history_pruned = 1, payload = NULL "
                "WHERE status IN (?, ?) AND updated_at < ? AND history_pruned = 0",
                (*_FINAL, now - history_window),
            )
            histories = cur.rowcount
            cur.execute("DELETE FROM task_leases WHERE until < ?", (now - 86400.0,))
            return PurgeReport(keys_released=keys, histories_pruned=histories)
