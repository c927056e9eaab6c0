"""SQLite task store: the embedded default, so the gateway runs with nothing but RabbitMQ.

One connection per thread (sqlite3 objects must stay on their thread), WAL so readers
never wait for the writer, ``synchronous=FULL`` because an acknowledgement promises the
task survives a power cut, and ``BEGIN IMMEDIATE`` so two writers queue up instead of
failing on a lock upgrade. Gateway and workers on one host may share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
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
        accept_order INTEGER,
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
        at REAL NOT NULL,
        PRIMARY KEY (task_id, seq)
    )""",
    """CREATE TABLE IF NOT EXISTS task_leases (
        task_id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        until REAL NOT NULL
    )""",
    # A resource key held by a task until it is final (then the row is deleted).
    """CREATE TABLE IF NOT EXISTS task_resources (
        resource_key TEXT NOT NULL,
        accept_order INTEGER NOT NULL,
        task_id TEXT NOT NULL,
        PRIMARY KEY (resource_key, accept_order)
    )""",
    "CREATE INDEX IF NOT EXISTS task_resources_task ON task_resources (task_id)",
    # A task parked behind an older one on a shared key; its message is sent again when
    # its turn comes (``woken_at``), so no worker thread waits for it.
    """CREATE TABLE IF NOT EXISTS task_waits (
        task_id TEXT PRIMARY KEY,
        attempt INTEGER NOT NULL,
        blocked_by TEXT NOT NULL,
        parked_at REAL NOT NULL,
        woken_at REAL
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
        # Writers of this process queue here, woken the moment the last one commits,
        # instead of in SQLite's busy handler, which polls with sleeps growing to 100 ms.
        # Other processes sharing the file still meet the busy handler.
        self._writer = threading.Lock()

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
    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[Cursor]:
        writer = self._writer if begin == "BEGIN IMMEDIATE" else None
        if writer is not None:
            writer.acquire()
        try:
            with self._begun(begin) as cur:
                yield cur
        finally:
            if writer is not None:
                writer.release()

    @contextmanager
    def _begun(self, begin: str) -> Iterator[Cursor]:
        try:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute(begin)
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

    @contextmanager
    def _snapshot(self) -> Iterator[Cursor]:
        # WAL: one statement in autocommit mode is its own read transaction, on one
        # snapshot, without the write lock, so reads (polls, resumes) never queue behind
        # the group-commit writer or one another. An explicit BEGIN DEFERRED ... COMMIT
        # around it gave the same read for two more calls into SQLite per read (a resume
        # storm makes 20,000 reads; README "Performance", item 4). The cursor is closed
        # before the caller goes on, which ends the statement's read.
        try:
            cur = self._connection().cursor()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unavailable: {exc}") from exc
        try:
            yield cur
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store error: {exc}") from exc
        finally:
            cur.close()

    def _ddl(self) -> list[str]:
        return _DDL

    def _add_missing_columns(self, cur: Cursor) -> None:
        cur.execute("PRAGMA table_info(tasks)")
        have = {row[1] for row in cur.fetchall()}
        for column, sql_type in (
            ("accept_order", "INTEGER"),
            ("resource_keys", "TEXT"),
            ("attempt_base", "INTEGER NOT NULL DEFAULT 0"),
        ):
            if column not in have:
                cur.execute(f"ALTER TABLE tasks ADD COLUMN {column} {sql_type}")
        cur.execute("CREATE INDEX IF NOT EXISTS tasks_accept_order ON tasks (accept_order)")

    def _next_accept_order(self, cur: Cursor, keys: Sequence[str]) -> int:
        # BEGIN IMMEDIATE makes every writer wait its turn, so MAX + 1 is taken and
        # committed by one transaction at a time (the index makes MAX a lookup).
        cur.execute("SELECT COALESCE(MAX(accept_order), 0) + 1 FROM tasks")
        return int(cur.fetchone()[0])

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()
