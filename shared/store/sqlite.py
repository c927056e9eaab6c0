"""SQLite task store: the embedded default, so the gateway runs with nothing but RabbitMQ.

One connection per thread (sqlite3 objects must stay on their thread), WAL so readers
never wait for the writer, ``synchronous=FULL`` because an acknowledgement promises the
task survives a power cut, and ``BEGIN IMMEDIATE`` so two writers queue up instead of
failing on a lock upgrade. Gateway and workers on one host may share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.errors import StoreUnavailable
from shared.store.sql import Cursor, SqlTaskStore

__all__ = ["SqliteTaskStore"]

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
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        published_at REAL,
        publish_claim_until REAL,
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
        at REAL NOT NULL,
        PRIMARY KEY (task_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS task_leases (
        task_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until REAL NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS tasks_created_at ON tasks (created_at)",
    "CREATE INDEX IF NOT EXISTS tasks_status_updated_at ON tasks (status, updated_at)",
]


class SqliteTaskStore(SqlTaskStore):
    def __init__(self, path: str) -> None:
        self.path = path
        if path != ":memory:":
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnavailable(f"SQLite store unavailable: cannot create {path}: {exc}") from exc
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _transaction(self) -> Iterator[Cursor]:
        try:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
        try:
            yield cur
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK")
            raise StoreUnavailable(f"SQLite store error: {exc}") from exc
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        finally:
            cur.close()

    def _ddl(self) -> list[str]:
        return _DDL

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
