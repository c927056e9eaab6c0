"""Task store: ``open_store(DATABASE_URL)`` picks SQLite or PostgreSQL by URL scheme."""

from __future__ import annotations

from shared.store.aio import AsyncTaskStore
from shared.store.base import TaskStore
from shared.store.records import Begun, NewTask, PurgeReport, Reopened, TaskRecord, Turn, Waiter

__all__ = [
    "AsyncTaskStore",
    "Begun",
    "NewTask",
    "PurgeReport",
    "Reopened",
    "TaskRecord",
    "TaskStore",
    "Turn",
    "Waiter",
    "open_store",
]


def open_store(url: str) -> TaskStore:
    """``sqlite:///relative/path``, ``sqlite:////absolute/path``, ``sqlite://:memory:``
    (tests only: one connection per thread means one database per thread) or
    ``postgresql://user@host/db``. The store is migrated before it is returned."""
    store: TaskStore
    if url.startswith("sqlite://"):
        from shared.store.sqlite import SqliteTaskStore

        path = url.removeprefix("sqlite://")
        store = SqliteTaskStore(path.removeprefix("/") if path != ":memory:" else path)
    elif url.startswith(("postgresql://", "postgres://")):
        from shared.store.postgres import PostgresTaskStore

        store = PostgresTaskStore(url)
    else:
        raise ValueError(f"DATABASE_URL must start with sqlite:// or postgresql://, got {url!r}")
    store.migrate()
    return store
