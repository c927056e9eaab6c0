"""PostgreSQL task store, for production and for several gateway instances at once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg_pool

from shared.errors import StoreUnavailable
from shared.store.sql import Cursor, SqlTaskStore

__all__ = ["PostgresTaskStore"]

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

    def _skip_fsync(self, cur: Cursor) -> None:
        cur.execute("SET LOCAL synchronous_commit = off")

    def close(self) -> None:
        if self._opened:
            self._pool.close()
            self._opened = False
