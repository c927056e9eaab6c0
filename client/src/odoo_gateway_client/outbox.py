"""The durable outbox: every submission is written here before anything is sent.

One SQLite file, one row per submission (or per task watched by id). A row lives through:

``pending``   written, not yet acknowledged by the gateway: resent with the SAME key until it is
``accepted``  / ``running`` / ``retrying``: the gateway has the task (``task_id``); the row
              remembers the last event seq seen, which is what ``resume`` sends after a reconnect
``succeeded`` / ``failed``: final, kept until the application has seen it, then removed
``rejected``  the gateway refused the submission (client error); kept until seen, then removed
``unknown``   the gateway does not know the task id; kept until seen, then removed

Durability: ``synchronous=FULL`` so a row that :meth:`Outbox.add` returned survives power loss,
not only a process crash (field devices lose power). WAL keeps readers (``gwctl outbox``) from
blocking the writer.

A client process owns an outbox at a time. Two processes on one file stay correct (keys are
idempotent on the gateway and event updates are conditional on seq), only wasteful.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from odoo_gateway_client.status import SETTLED_STATUSES, HandleStatus, LocalStatus, TaskStatus, handle_status

__all__ = ["Outbox", "OutboxEntry"]

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT UNIQUE,          -- idempotency key; NULL for a task watched by id only
    kind        TEXT,
    payload     TEXT,                 -- JSON
    task_id     TEXT,
    status      TEXT NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0,
    result      TEXT,                 -- JSON
    error       TEXT,                 -- JSON
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_task ON outbox (task_id);
"""
_COLUMNS = "id, key, kind, payload, task_id, status, last_seq, result, error, created_at, updated_at"


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    key: str | None
    kind: str | None
    payload: dict[str, Any] | None
    task_id: str | None
    status: HandleStatus
    last_seq: int
    result: dict[str, Any] | None
    error: dict[str, Any] | None
    created_at: float
    updated_at: float

    @property
    def acknowledged(self) -> bool:
        return self.task_id is not None

    @property
    def settled(self) -> bool:
        return self.status in SETTLED_STATUSES


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _dumps(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), sort_keys=True)


def _entry(row: tuple[Any, ...]) -> OutboxEntry:
    return OutboxEntry(
        id=row[0],
        key=row[1],
        kind=row[2],
        payload=_loads(row[3]),
        task_id=row[4],
        status=handle_status(row[5]),
        last_seq=row[6],
        result=_loads(row[7]),
        error=_loads(row[8]),
        created_at=row[9],
        updated_at=row[10],
    )


class Outbox:
    """Thread-safe (one connection behind a lock): the async client calls it from worker threads
    so an fsync never stalls the event loop."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Create the file owner-only before SQLite does: payloads may be business data.
        os.close(os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600))
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = sqlite3.connect(
            self.path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise RuntimeError(f"{self.path} was written by a newer client (schema {version})")
        self._db.executescript(_SCHEMA)
        self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    @property
    def closed(self) -> bool:
        return self._db is None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the outbox is closed")
        return self._db

    def _one(self, where: str, args: tuple[Any, ...]) -> OutboxEntry | None:
        row = self._conn().execute(f"SELECT {_COLUMNS} FROM outbox WHERE {where}", args).fetchone()
        return None if row is None else _entry(row)

    # -- reads ---------------------------------------------------------------------------

    def entries(self) -> list[OutboxEntry]:
        with self._lock:
            rows = self._conn().execute(f"SELECT {_COLUMNS} FROM outbox ORDER BY id").fetchall()
        return [_entry(row) for row in rows]

    def get(self, entry_id: int) -> OutboxEntry | None:
        with self._lock:
            return self._one("id = ?", (entry_id,))

    def by_key(self, key: str) -> OutboxEntry | None:
        with self._lock:
            return self._one("key = ?", (key,))

    def by_task(self, task_id: str) -> OutboxEntry | None:
        with self._lock:
            return self._one("task_id = ? ORDER BY id", (task_id,))

    def unacknowledged(self) -> list[OutboxEntry]:
        return [e for e in self.entries() if e.status is LocalStatus.PENDING]

    # -- writes (each one transaction, fsync'd before returning) ---------------------------

    def add(self, key: str, kind: str, payload: dict[str, Any]) -> tuple[OutboxEntry, bool]:
        """Record a submission; ``(entry, created)``. An existing key returns its row unchanged,
        so a caller retrying ``add`` after a crash cannot create a second submission."""
        now = time.time()
        with self._lock:
            db = self._conn()
            cursor = db.execute(
                "INSERT INTO outbox (key, kind, payload, status, created_at, updated_at) "
                "VALUES (?, ?, ?, 'pending', ?, ?) ON CONFLICT (key) DO NOTHING",
                (key, kind, _dumps(payload), now, now),
            )
            created = cursor.rowcount == 1
            entry = self._one("key = ?", (key,))
        assert entry is not None
        return entry, created

    def watch(self, task_id: str) -> OutboxEntry:
        """A row for a task known only by id (submitted elsewhere or by an earlier outbox)."""
        now = time.time()
        with self._lock:
            existing = self._one("task_id = ? ORDER BY id", (task_id,))
            if existing is not None:
                return existing
            self._conn().execute(
                "INSERT INTO outbox (task_id, status, created_at, updated_at) VALUES (?, 'accepted', ?, ?)",
                (task_id, now, now),
            )
            entry = self._one("task_id = ? ORDER BY id", (task_id,))
        assert entry is not None
        return entry

    def mark_accepted(self, entry_id: int, task_id: str) -> None:
        with self._lock:
            self._conn().execute(
                "UPDATE outbox SET task_id = ?, updated_at = ?, "
                "status = CASE WHEN status = 'pending' THEN 'accepted' ELSE status END "
                "WHERE id = ?",
                (task_id, time.time(), entry_id),
            )

    def record_event(
        self,
        entry_id: int,
        seq: int,
        status: TaskStatus,
        result: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
    ) -> bool:
        """Advance the row to event ``seq``; False (and no change) if it has seen ``seq`` already.
        The condition is in the UPDATE itself, so a late duplicate can never move a row back."""
        with self._lock:
            cursor = self._conn().execute(
                "UPDATE outbox SET last_seq = ?, status = ?, result = ?, error = ?, updated_at = ? "
                "WHERE id = ? AND last_seq < ?",
                (seq, status, _dumps(result), _dumps(error), time.time(), entry_id, seq),
            )
            return cursor.rowcount == 1

    def settle(self, entry_id: int, status: LocalStatus, error: dict[str, Any] | None) -> None:
        """Mark a row ``rejected`` or ``unknown``: nothing left to send, only to show."""
        if status not in (LocalStatus.REJECTED, LocalStatus.UNKNOWN):
            raise ValueError(f"settle() takes 'rejected' or 'unknown', not {status!r}")
        with self._lock:
            self._conn().execute(
                "UPDATE outbox SET status = ?, error = ?, updated_at = ? WHERE id = ?",
                (status, _dumps(error), time.time(), entry_id),
            )

    def remove(self, entry_id: int) -> bool:
        with self._lock:
            return self._conn().execute("DELETE FROM outbox WHERE id = ?", (entry_id,)).rowcount == 1

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
