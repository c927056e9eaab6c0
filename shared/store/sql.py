"""The task store in portable SQL (SQLite >= 3.24 and PostgreSQL >= 9.5 both run it).

Statements are written with ``?`` placeholders; a dialect translates them. Each public
method is one transaction. Atomicity comes from single conditional statements
(``INSERT … ON CONFLICT``, ``UPDATE … WHERE seq < ?``), not from locks held across calls.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, Protocol

from odoo_gateway_wire.statuses import FINAL_STATUSES, TaskStatus, event_seq
from shared.events import ErrorInfo, TaskEvent
from shared.store.base import TaskStore
from shared.store.records import Begun, NewTask, PurgeReport, Reopened, TaskRecord, Turn, Waiter

__all__ = ["Cursor", "SqlTaskStore"]

_TASK_COLUMNS = (
    "id, principal, idem_key, fingerprint, kind, payload, status, seq, attempts, result, "
    "error, created_at, updated_at, published_at, history_pruned, accept_order, resource_keys, attempt_base"
)
# A task blocks the tasks after it on a shared resource key while it is not final and is
# acknowledged or may still be (published, or its publish claim is live). A task whose
# publish failed and was never acknowledged blocks nobody; if its client replays it, it is
# published then, and takes a new place at the end of the order.
_LIVE_TASK = "(t.published_at IS NOT NULL OR t.publish_claim_until >= ?)"
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
        accept_order=int(row[15] or 0),
        resource_keys=tuple(_loads(row[16]) or ()),
        attempt_base=int(row[17] or 0),
    )


def _event(row: Sequence[Any]) -> TaskEvent:
    return TaskEvent(
        task_id=row[0],
        seq=int(row[1]),
        status=TaskStatus(row[2]),
        attempt=int(row[3]),
        result=_loads(row[4]),
        error=_loads(row[5]),
        at=float(row[6]),
    )


def _new_record(new: NewTask, order: int, now: float) -> TaskRecord:
    """The row just inserted for ``new``, without reading it back."""
    return TaskRecord(
        id=new.id,
        principal=new.principal,
        idempotency_key=new.idempotency_key,
        fingerprint=new.fingerprint,
        kind=new.kind,
        payload=new.payload,
        status=TaskStatus.ACCEPTED,
        seq=0,
        attempts=0,
        result=None,
        error=None,
        created_at=now,
        updated_at=now,
        published_at=None,
        history_pruned=False,
        accept_order=order,
        resource_keys=tuple(new.resource_keys),
    )


class SqlTaskStore(TaskStore):
    @abc.abstractmethod
    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        """One transaction; commits on success, rolls back on error, and turns driver
        errors into StoreUnavailable."""
        yield NotImplemented

    def _snapshot(self) -> AbstractContextManager[Cursor]:
        """A consistent read of ONE statement that takes no write lock (SQLite: no explicit
        transaction, so readers neither queue behind the writer nor behind each other)."""
        return self._transaction()

    @abc.abstractmethod
    def _ddl(self) -> list[str]: ...

    @abc.abstractmethod
    def _add_missing_columns(self, cur: Cursor) -> None:
        """Bring a table created by an older version up to date (columns added since)."""

    @abc.abstractmethod
    def _next_accept_order(self, cur: Cursor, keys: Sequence[str]) -> int:
        """The next acceptance order, taken so that of two transactions sharing a resource
        key, the one that commits first holds the lower number (a worker that sees a task
        never misses an older task on the same key that has yet to commit)."""

    #: Appended to the blocker query: lock what it reads, so that a blocker's release and
    #: a waiter's parking cannot cross (PostgreSQL; SQLite serialises writers anyway).
    _LOCK_READ = ""

    def _schema_current(self, cur: Cursor) -> bool:
        """True if every table, column and index of this version exists (no DDL needed)."""
        return False

    def migrate(self) -> None:
        with self._transaction() as cur:
            # DDL takes table locks (CREATE INDEX a SHARE lock, ALTER TABLE an exclusive one)
            # even when there is nothing to create: a process starting beside busy ones
            # must not run it, or it deadlocks with their submissions.
            if self._schema_current(cur):
                return
            for statement in self._ddl():
                cur.execute(statement)
            self._add_missing_columns(cur)

    def ping(self) -> None:
        with self._transaction() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()

    def create_or_get(self, new: NewTask, now: float, claim_ttl: float) -> tuple[TaskRecord, bool]:
        return self.accept_batch([new], [], now, claim_ttl)[0]

    def accept_batch(
        self, news: Sequence[NewTask], published: Sequence[str], now: float, claim_ttl: float
    ) -> list[tuple[TaskRecord, bool]]:
        with self._transaction() as cur:
            if published:
                if not news:
                    self._skip_fsync(cur)  # see mark_published
                self._mark_published_in(cur, published, now)
            if not news:
                return []
            # Every key of the batch first, in the one global order: per task, a later
            # task's lower key would invert it against another instance's batch.
            self._lock_resources(cur, [key for new in news for key in new.resource_keys])
            orders = self._next_accept_orders(cur, len(news))
            # Set-based: a statement per table for the whole batch, not per task (on
            # PostgreSQL each statement is a round trip).
            created_ids = self._insert_tasks(cur, news, orders, now, claim_ttl)
            created = [(new, order) for new, order in zip(news, orders, strict=True) if new.id in created_ids]
            if created:
                self._insert_rows(
                    cur,
                    "task_events (task_id, seq, status, attempt, result, error, at)",
                    "(?, 0, ?, 0, NULL, NULL, ?)",
                    [(new.id, TaskStatus.ACCEPTED.value, now) for new, _ in created],
                )
            holds = [(key, order, new.id) for new, order in created for key in sorted(set(new.resource_keys))]
            if holds:
                self._insert_rows(cur, "task_resources (resource_key, accept_order, task_id)", "(?, ?, ?)", holds)
            results: list[tuple[TaskRecord, bool]] = []
            for new, order in zip(news, orders, strict=True):
                if new.id in created_ids:
                    results.append((_new_record(new, order, now), True))
                else:  # its (principal, key) existed, or came earlier in this batch
                    cur.execute(
                        f"SELECT {_TASK_COLUMNS} FROM tasks WHERE principal = ? AND idem_key = ?",
                        (new.principal, new.idempotency_key),
                    )
                    results.append((_task(cur.fetchone()), False))
            return results

    def _lock_resources(self, cur: Cursor, keys: Sequence[str]) -> None:
        """Hold what makes accept order match commit order for these keys (PostgreSQL)."""

    def _next_accept_orders(self, cur: Cursor, count: int) -> list[int]:
        first = self._next_accept_order(cur, ())
        return [first + i for i in range(count)]

    def _insert_tasks(
        self, cur: Cursor, news: Sequence[NewTask], orders: Sequence[int], now: float, claim_ttl: float
    ) -> set[str]:
        """Insert the tasks whose (principal, key) is new; the ids inserted."""
        rows = [
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
                order,
                _dumps(list(new.resource_keys)),
            )
            for new, order in zip(news, orders, strict=True)
        ]
        placeholders = ", ".join(["(?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, 0, ?, ?)"] * len(rows))
        cur.execute(
            "INSERT INTO tasks (id, principal, idem_key, fingerprint, kind, payload, status, "
            "seq, attempts, created_at, updated_at, publish_claim_until, history_pruned, "
            f"accept_order, resource_keys) VALUES {placeholders} "
            "ON CONFLICT (principal, idem_key) DO NOTHING RETURNING id",
            [value for row in rows for value in row],
        )
        return {row[0] for row in cur.fetchall()}

    @staticmethod
    def _insert_rows(cur: Cursor, table: str, placeholder: str, rows: Sequence[Sequence[Any]]) -> None:
        cur.execute(
            f"INSERT INTO {table} VALUES {', '.join([placeholder] * len(rows))}",
            [value for row in rows for value in row],
        )

    def claim_publish(self, task_id: str, now: float, ttl: float) -> bool:
        with self._transaction() as cur:
            cur.execute(
                "UPDATE tasks SET publish_claim_until = ? WHERE id = ? AND published_at IS NULL "
                "AND (publish_claim_until IS NULL OR publish_claim_until < ?)",
                (now + ttl, task_id, now),
            )
            if cur.rowcount != 1:
                return False
            # Never acknowledged until now: it is accepted now, so it queues behind every
            # task accepted meanwhile on the same records.
            cur.execute("SELECT resource_key FROM task_resources WHERE task_id = ?", (task_id,))
            keys = [row[0] for row in cur.fetchall()]
            order = self._next_accept_order(cur, keys)
            cur.execute("UPDATE tasks SET accept_order = ? WHERE id = ?", (order, task_id))
            cur.execute("UPDATE task_resources SET accept_order = ? WHERE task_id = ?", (order, task_id))
            return True

    def _skip_fsync(self, cur: Cursor) -> None:
        """For writes whose loss in a crash is harmless: do not wait for them to be on disk."""

    def mark_published(self, task_id: str, now: float) -> None:
        # Losing this mark in a crash costs at most one more publish of a task the workers
        # will find already done; waiting for its fsync would cost every ack.
        self.accept_batch([], [task_id], now, 0.0)

    def _mark_published_in(self, cur: Cursor, task_ids: Sequence[str], now: float) -> None:
        for start in range(0, len(task_ids), 500):
            chunk = task_ids[start : start + 500]
            cur.execute(
                "UPDATE tasks SET published_at = ?, publish_claim_until = NULL "
                f"WHERE id IN ({', '.join(['?'] * len(chunk))}) AND published_at IS NULL",
                (now, *chunk),
            )

    def release_publish_claim(self, task_id: str) -> None:
        with self._transaction() as cur:
            cur.execute("UPDATE tasks SET publish_claim_until = NULL WHERE id = ?", (task_id,))

    def get(self, task_id: str) -> TaskRecord | None:
        with self._snapshot() as cur:
            cur.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task_id,))
            row = cur.fetchone()
            return None if row is None else _task(row)

    def task_and_events_many(
        self, asks: Sequence[tuple[str, str, int, int]]
    ) -> list[tuple[TaskRecord | None, list[TaskEvent]]]:
        """:meth:`task_and_events` for each ``(task_id, principal, after_seq, limit)``, in
        two statements for all of them (a resume storm's reads, grouped by read_batch.py)."""
        tasks: dict[str, TaskRecord] = {}
        wanted: dict[str, int] = {}  # task id -> the lowest seq after which events are wanted
        events: dict[str, dict[int, TaskEvent]] = {}
        with self._snapshot() as cur:
            ids = list(dict.fromkeys(task_id for task_id, _, _, _ in asks))
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                cur.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id IN ({', '.join(['?'] * len(chunk))})", chunk)
                tasks.update((row[0], _task(row)) for row in cur.fetchall())
            for task_id, principal, after_seq, limit in asks:
                task = tasks.get(task_id)
                if task is not None and task.principal == principal and limit > 0:
                    wanted[task_id] = min(after_seq, wanted.get(task_id, after_seq))
            pairs = list(wanted.items())
            for start in range(0, len(pairs), 250):
                part = pairs[start : start + 250]
                values = ", ".join(["(CAST(? AS TEXT), CAST(? AS INTEGER))"] * len(part))
                cur.execute(
                    f"WITH wanted (task_id, after_seq) AS (VALUES {values}) "
                    "SELECT e.task_id, e.seq, e.status, e.attempt, e.result, e.error, e.at "
                    "FROM wanted JOIN task_events e ON e.task_id = wanted.task_id AND e.seq > wanted.after_seq",
                    [value for pair in part for value in pair],
                )
                for row in cur.fetchall():
                    events.setdefault(row[0], {})[int(row[1])] = _event(row)
        out: list[tuple[TaskRecord | None, list[TaskEvent]]] = []
        for task_id, principal, after_seq, limit in asks:
            task = tasks.get(task_id)
            if task is None or task.principal != principal or limit <= 0:
                out.append((task, []))
                continue
            mine = events.get(task_id, {})
            out.append((task, [mine[seq] for seq in sorted(mine) if seq > after_seq][:limit]))
        return out

    def events_after(self, task_id: str, after_seq: int, limit: int = 1000) -> list[TaskEvent]:
        with self._snapshot() as cur:
            cur.execute(
                "SELECT task_id, seq, status, attempt, result, error, at FROM task_events "
                "WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (task_id, after_seq, limit),
            )
            return [_event(row) for row in cur.fetchall()]

    def apply_event(self, event: TaskEvent) -> bool:
        with self._transaction() as cur:
            return self._apply_event_in(cur, event)

    def finish_attempt(self, event: TaskEvent, owner: str | None) -> bool:
        with self._transaction() as cur:
            applied = self._apply_event_in(cur, event)
            if owner is not None:
                self._release_lease_in(cur, event.task_id, owner)
            return applied

    def _apply_event_in(self, cur: Cursor, event: TaskEvent) -> bool:
        result = _dumps(event.result)
        error = _dumps(event.error.model_dump() if event.error else None)
        row = (event.task_id, event.seq, event.status.value, event.attempt, result, error, event.at)
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
                (*row, event.task_id, event.seq),
            )
            return False
        cur.execute(
            "INSERT INTO task_events (task_id, seq, status, attempt, result, error, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (task_id, seq) DO NOTHING",
            row,
        )
        if event.status in FINAL_STATUSES:
            # Final: the records it held are free for the next task in line.
            cur.execute("DELETE FROM task_resources WHERE task_id = ?", (event.task_id,))
            cur.execute("DELETE FROM task_waits WHERE task_id = ?", (event.task_id,))
        return True

    def _blocker(self, cur: Cursor, task_id: str, now: float, lock: bool) -> tuple[str | None, tuple[str, ...]]:
        cur.execute("SELECT resource_key, accept_order FROM task_resources WHERE task_id = ?", (task_id,))
        mine = cur.fetchall()
        if not mine:
            return None, ()
        keys = [row[0] for row in mine]
        marks = ", ".join("?" for _ in keys)
        cur.execute(
            "SELECT r.task_id, r.resource_key FROM task_resources r JOIN tasks t ON t.id = r.task_id "
            f"WHERE r.resource_key IN ({marks}) AND r.accept_order < ? AND {_LIVE_TASK} "
            f"ORDER BY r.accept_order{self._LOCK_READ if lock else ''}",
            (*keys, int(mine[0][1]), now),
        )
        rows = cur.fetchall()
        if not rows:
            return None, ()
        first = rows[0][0]
        return first, tuple(sorted({row[1] for row in rows if row[0] == first}))

    def take_turn(self, task_id: str, attempt: int, now: float) -> Turn:
        with self._transaction() as cur:
            return self._take_turn_in(cur, task_id, attempt, now)

    def begin_attempt(
        self, task_id: str, owner: str, attempt: int, now: float, ttl: float, running: TaskEvent
    ) -> Begun:
        # One transaction instead of three: on SQLite every writer of every process queues
        # for one lock, so each transaction a task costs is a wait for every other task.
        with self._transaction() as cur:
            wait = self._acquire_lease_in(cur, task_id, owner, now, ttl)
            if wait is not None:
                return Begun(wait)
            turn = self._take_turn_in(cur, task_id, attempt, now)
            if turn.ready:
                self._apply_event_in(cur, running)
            return Begun(None, turn)

    def _take_turn_in(self, cur: Cursor, task_id: str, attempt: int, now: float) -> Turn:
        # A worker holding the message proves it was published (the gateway's own mark
        # may have been lost in a crash); from now on the task holds its place.
        cur.execute("UPDATE tasks SET published_at = ? WHERE id = ? AND published_at IS NULL", (now, task_id))
        blocker, keys = self._blocker(cur, task_id, now, lock=True)
        if blocker is None:
            cur.execute("DELETE FROM task_waits WHERE task_id = ?", (task_id,))
            return Turn(None)
        cur.execute(
            "INSERT INTO task_waits (task_id, attempt, blocked_by, parked_at, woken_at) VALUES (?, ?, ?, ?, NULL) "
            "ON CONFLICT (task_id) DO UPDATE SET attempt = excluded.attempt, blocked_by = excluded.blocked_by, "
            "parked_at = excluded.parked_at, woken_at = NULL",
            (task_id, attempt, blocker, now),
        )
        return Turn(blocker, keys)

    def wake_waiters(
        self, now: float, *, keys: Sequence[str] | None = None, rewake_after: float = 30.0, limit: int = 500
    ) -> list[Waiter]:
        scope, params = "", []
        if keys is not None:
            if not keys:
                return []
            scope = (
                " AND w.task_id IN (SELECT task_id FROM task_resources WHERE resource_key IN "
                f"({', '.join('?' for _ in keys)}))"
            )
            params = list(keys)
        with self._transaction() as cur:
            cur.execute(
                "SELECT w.task_id, w.attempt, parked.kind, parked.payload FROM task_waits w "
                "JOIN tasks parked ON parked.id = w.task_id "
                "WHERE (w.woken_at IS NULL OR w.woken_at < ?) AND NOT EXISTS (SELECT 1 FROM task_resources m "
                "JOIN task_resources r ON r.resource_key = m.resource_key AND r.accept_order < m.accept_order "
                f"JOIN tasks t ON t.id = r.task_id WHERE m.task_id = w.task_id AND {_LIVE_TASK})"
                f"{scope} ORDER BY w.parked_at LIMIT ?",
                (now - rewake_after, now, *params, limit),
            )
            candidates = cur.fetchall()
            woken = []
            for task_id, attempt, kind, payload in candidates:
                # Claimed by one waker only: a finishing worker and a sweeper may race.
                cur.execute(
                    "UPDATE task_waits SET woken_at = ? WHERE task_id = ? AND (woken_at IS NULL OR woken_at < ?)",
                    (now, task_id, now - rewake_after),
                )
                if cur.rowcount == 1 and payload is not None:
                    woken.append(Waiter(task_id, kind, _loads(payload), int(attempt)))
            return woken

    def acquire_lease(self, task_id: str, owner: str, now: float, ttl: float) -> float | None:
        with self._transaction() as cur:
            return self._acquire_lease_in(cur, task_id, owner, now, ttl)

    @staticmethod
    def _acquire_lease_in(cur: Cursor, task_id: str, owner: str, now: float, ttl: float) -> float | None:
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
            self._release_lease_in(cur, task_id, owner)

    @staticmethod
    def _release_lease_in(cur: Cursor, task_id: str, owner: str) -> None:
        cur.execute("DELETE FROM task_leases WHERE task_id = ? AND owner = ?", (task_id, owner))

    def list_failed(self, principal: str | None, limit: int = 100, before: float | None = None) -> list[TaskRecord]:
        where, params = "status = ?", list[Any]([TaskStatus.FAILED.value])
        if principal is not None:
            where, params = where + " AND principal = ?", [*params, principal]
        if before is not None:
            where, params = where + " AND updated_at < ?", [*params, before]
        with self._transaction() as cur:
            cur.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE {where} ORDER BY updated_at DESC LIMIT ?", (*params, limit)
            )
            return [_task(row) for row in cur.fetchall()]

    def reopen(self, task_id: str, now: float, claim_ttl: float) -> Reopened | None:
        with self._transaction() as cur:
            cur.execute(f"SELECT {_TASK_COLUMNS}, publish_claim_until FROM tasks WHERE id = ?", (task_id,))
            row = cur.fetchone()
            if row is None:
                return None
            task, claim = _task(row), row[18]
            if task.payload is None:
                return None  # retention removed what the workers would need
            if task.status is TaskStatus.FAILED:
                return self._reopen_failed(cur, task, now, claim_ttl)
            if (
                task.status is TaskStatus.RETRYING
                and task.attempt_base > 0
                and task.published_at is None
                and (claim is None or float(claim) < now)
            ):
                # Reopened before, but its publish failed: claim the publish again.
                cur.execute("UPDATE tasks SET publish_claim_until = ? WHERE id = ?", (now + claim_ttl, task.id))
                return Reopened(task=task, event=None, attempt=task.attempt_base + 1)
            return None

    def _reopen_failed(self, cur: Cursor, task: TaskRecord, now: float, claim_ttl: float) -> Reopened | None:
        # The reopen stands in the retrying slot of the attempt after the failed one; the
        # next run is the attempt after that, so every seq it makes is higher still.
        attempt = max(task.attempts, (task.seq + 3) // 4) + 1
        error = ErrorInfo(code="reopened", message="An operator retried this failed task; it runs again.")
        event = TaskEvent(
            task_id=task.id,
            seq=event_seq(attempt, TaskStatus.RETRYING),
            status=TaskStatus.RETRYING,
            attempt=attempt,
            error=error,
            at=now,
        )
        # A new acceptance, as far as its Odoo records go: at the end of the line.
        self._lock_resources(cur, task.resource_keys)
        order = self._next_accept_order(cur, task.resource_keys)
        cur.execute(
            "UPDATE tasks SET status = ?, seq = ?, attempts = ?, result = NULL, error = ?, updated_at = ?, "
            "attempt_base = ?, published_at = NULL, publish_claim_until = ?, accept_order = ? "
            "WHERE id = ? AND status = ? AND seq = ?",
            (
                event.status.value,
                event.seq,
                attempt,
                _dumps(error.model_dump()),
                now,
                attempt,
                now + claim_ttl,
                order,
                task.id,
                TaskStatus.FAILED.value,
                task.seq,
            ),
        )
        if cur.rowcount != 1:
            return None  # reopened by someone else meanwhile
        cur.execute(
            "INSERT INTO task_events (task_id, seq, status, attempt, result, error, at) "
            "VALUES (?, ?, ?, ?, NULL, ?, ?) ON CONFLICT (task_id, seq) DO NOTHING",
            (task.id, event.seq, event.status.value, attempt, _dumps(error.model_dump()), now),
        )
        cur.execute("DELETE FROM task_resources WHERE task_id = ?", (task.id,))
        holds = [(key, order, task.id) for key in sorted(set(task.resource_keys))]
        if holds:
            self._insert_rows(cur, "task_resources (resource_key, accept_order, task_id)", "(?, ?, ?)", holds)
        cur.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id = ?", (task.id,))
        return Reopened(task=_task(cur.fetchone()), event=event, attempt=attempt + 1)

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
            # Submissions never acknowledged (publish failed, never replayed) hold no record.
            cur.execute(
                "DELETE FROM task_resources WHERE task_id IN (SELECT id FROM tasks "
                "WHERE published_at IS NULL AND created_at < ?)",
                (now - key_window,),
            )
            return PurgeReport(keys_released=keys, histories_pruned=histories)
