"""PostgreSQL task store, for production and for several gateway instances at once."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from shared.errors import StoreUnavailable
from shared.store.sql import Cursor, SqlTaskStore

__all__ = ["PostgresTaskStore", "resource_lock_id"]


#: Advisory lock id held while migrating (a random constant, outside resource_lock_id's use).
_MIGRATION_LOCK = 0x6F646F6F67770001


def resource_lock_id(key: str) -> int:
    """A resource key as a PostgreSQL advisory lock id (signed 64 bits). A collision only
    makes two unrelated keys queue at acceptance for a moment."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)


_DDL = [
    """CREATE TABLE IF NOT EXISTS tasks (
        id TEXT PRIMARY KEY,
        principal TEXT NOT NULL,
        idem_key TEXT,
        fingerprint TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT,
        status TEXT NOT NULL,
        seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        result TEXT,
        error TEXT,
        created_at DOUBLE PRECISION NOT NULL,
        updated_at DOUBLE PRECISION NOT NULL,
        published_at DOUBLE PRECISION,
        publish_claim_until DOUBLE PRECISION,
        history_pruned INTEGER NOT NULL DEFAULT 0,
        accept_order BIGINT,
        resource_keys TEXT,
        attempt_base INTEGER NOT NULL DEFAULT 0,
        UNIQUE (principal, idem_key)
    )""",
    """CREATE TABLE IF NOT EXISTS task_events (
        task_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        status TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        result TEXT,
        error TEXT,
        at DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (task_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS task_leases (
        task_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS task_resources (
        resource_key TEXT NOT NULL,
        accept_order BIGINT NOT NULL,
        task_id TEXT NOT NULL,
        PRIMARY KEY (resource_key, accept_order)
    )""",
    "CREATE INDEX IF NOT EXISTS task_resources_task ON task_resources (task_id)",
    """CREATE TABLE IF NOT EXISTS task_waits (
        task_id TEXT PRIMARY KEY,
        attempt INTEGER NOT NULL,
        blocked_by TEXT NOT NULL,
        parked_at DOUBLE PRECISION NOT NULL,
        woken_at DOUBLE PRECISION
    )""",
    "CREATE SEQUENCE IF NOT EXISTS task_accept_order",
    "CREATE INDEX IF NOT EXISTS tasks_created_at ON tasks (created_at)",
    "CREATE INDEX IF NOT EXISTS tasks_status_updated_at ON tasks (status, updated_at)",
]


class _QmarkCursor:
    """Lets the shared SQL keep ``?`` placeholders; psycopg wants ``%s``."""

    def __init__(self, cur: psycopg.Cursor[Any]) -> None:
        self._cur = cur

    @property
    def rowcount(self) -> int:
        return self._cur.rowcount

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(sql.replace("?", "%s"), params)

    def fetchone(self) -> Any:
        return self._cur.fetchone()

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall()


class PostgresTaskStore(SqlTaskStore):
    def __init__(self, url: str, *, max_size: int = 20) -> None:
        self.url = url
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            timeout=10.0,
            kwargs={"connect_timeout": 5},
        )
        self._opened = False

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        try:
            if not self._opened:
                self._pool.open(wait=False)
                self._opened = True
            with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                yield _QmarkCursor(cur)
        except (psycopg.Error, psycopg_pool.PoolTimeout) as exc:
            raise StoreUnavailable(f"PostgreSQL store unavailable: {exc}") from exc

    def _ddl(self) -> list[str]:
        return _DDL

    _LOCK_READ = " FOR SHARE OF r"

    def _schema_current(self, cur: Cursor) -> bool:
        cur.execute(
            "SELECT to_regclass('task_waits') IS NOT NULL AND to_regclass('task_accept_order') IS NOT NULL "
            "AND to_regclass('task_resources_task') IS NOT NULL AND EXISTS (SELECT 1 FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'tasks' AND column_name = 'attempt_base')"
        )
        if bool(cur.fetchone()[0]):
            return True
        # Several processes may start at once on a new database: one migrates at a time.
        cur.execute("SELECT pg_advisory_xact_lock(?)", (_MIGRATION_LOCK,))
        return False

    def _add_missing_columns(self, cur: Cursor) -> None:
        cur.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS accept_order BIGINT")
        cur.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS resource_keys TEXT")
        cur.execute("ALTER TABLE tasks ADD COLUMN IF NOT EXISTS attempt_base INTEGER NOT NULL DEFAULT 0")

    def _lock_resources(self, cur: Cursor, keys: Sequence[str]) -> None:
        # A sequence alone hands out numbers in call order, not commit order: a task with a
        # lower number could commit after a worker already let a higher one start. Holding
        # a transaction-scoped lock per key while taking the number closes that window for
        # the tasks that matter (those sharing a key); locks are taken in one global order
        # (numeric), so two multi-key submissions or batches cannot deadlock.
        locks = sorted({resource_lock_id(key) for key in keys})
        if locks:
            cur.execute("SELECT pg_advisory_xact_lock(id) FROM unnest(?::bigint[]) AS l(id)", (locks,))
            cur.fetchall()

    def _next_accept_orders(self, cur: Cursor, count: int) -> list[int]:
        cur.execute("SELECT nextval('task_accept_order') FROM generate_series(1, ?)", (count,))
        return sorted(int(row[0]) for row in cur.fetchall())

    def _next_accept_order(self, cur: Cursor, keys: Sequence[str]) -> int:
        self._lock_resources(cur, keys)  # in a batch they are held already: taken again at once
        cur.execute("SELECT nextval('task_accept_order')")
        return int(cur.fetchone()[0])

    def _skip_fsync(self, cur: Cursor) -> None:
        cur.execute("SET LOCAL synchronous_commit = off")

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
