"""The connection registry: which socket watches which task, and what it has been sent.

Plain code with no I/O: the WebSocket endpoint and the event relay are thin adapters
around it, and it is tested without sockets.

Gap-free, duplicate-free delivery per socket rests on two rules:

- a watch remembers the last seq sent; an event at or below it is never sent again;
- while a watch is being synchronised from the store (after ``accepted`` or ``resume``),
  live events are buffered, then merged with what the store returned, in seq order. The
  relay stores an event before announcing it, so an event is either in the store read or
  announced after the watch began: never in neither.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shared.events import TaskEvent

__all__ = ["Hub"]


@dataclass
class _Watch:
    last_seq: int
    buffer: list[TaskEvent] | None = field(default_factory=list)  # None once live


class Hub:
    def __init__(self) -> None:
        self._watches: dict[str, dict[str, _Watch]] = {}
        self._watchers: dict[str, set[str]] = {}

    def add(self, conn_id: str) -> None:
        self._watches.setdefault(conn_id, {})

    def remove(self, conn_id: str) -> int:
        """Forget a connection; how many watches it had."""
        watches = self._watches.pop(conn_id, {})
        for task_id in watches:
            self._drop_watcher(task_id, conn_id)
        return len(watches)

    def is_watching(self, conn_id: str, task_id: str) -> bool:
        return task_id in self._watches.get(conn_id, {})

    def watch_count(self, conn_id: str) -> int:
        return len(self._watches.get(conn_id, {}))

    def watch(self, conn_id: str, task_id: str, after_seq: int) -> None:
        """Start (or restart) watching ``task_id`` from ``after_seq``, in syncing mode:
        live events are buffered until :meth:`finish_sync`."""
        self._watches[conn_id][task_id] = _Watch(last_seq=after_seq)
        self._watchers.setdefault(task_id, set()).add(conn_id)

    def unwatch(self, conn_id: str, task_id: str) -> bool:
        """Stop watching ``task_id`` (its buffered events are dropped, never sent); False
        if it was not watched."""
        watches = self._watches.get(conn_id)
        if watches is None or watches.pop(task_id, None) is None:
            return False
        self._drop_watcher(task_id, conn_id)
        return True

    def _drop_watcher(self, task_id: str, conn_id: str) -> None:
        watchers = self._watchers.get(task_id)
        if watchers is not None:
            watchers.discard(conn_id)
            if not watchers:
                del self._watchers[task_id]

    def finish_sync(self, conn_id: str, task_id: str, stored: Iterable[TaskEvent]) -> list[TaskEvent]:
        """End syncing: the events to send now, in seq order, each once."""
        watch = self._watches.get(conn_id, {}).get(task_id)
        if watch is None:
            return []
        merged = {e.seq: e for e in (*stored, *(watch.buffer or ()))}
        watch.buffer = None
        return self._advance(watch, (merged[seq] for seq in sorted(merged)))

    def route(self, event: TaskEvent) -> list[str]:
        """The connections to send ``event`` to now (buffered ones get it later)."""
        targets: list[str] = []
        task_id, seq = event.task_id, event.seq
        for conn_id in self._watchers.get(task_id, ()):
            watch = self._watches[conn_id][task_id]
            if watch.buffer is not None:
                watch.buffer.append(event)
            elif seq > watch.last_seq:  # _advance for one event, inline: once per socket
                watch.last_seq = seq
                targets.append(conn_id)
        return targets

    def positions(self) -> dict[str, int]:
        """For each watched task, the lowest seq any live watch has been sent: where a
        resync from the store must start after the relay lost its connection."""
        lowest: dict[str, int] = {}
        for watches in self._watches.values():
            for task_id, watch in watches.items():
                lowest[task_id] = min(lowest.get(task_id, watch.last_seq), watch.last_seq)
        return lowest

    @staticmethod
    def _advance(watch: _Watch, events: Iterable[TaskEvent]) -> list[TaskEvent]:
        out = []
        for event in events:
            if event.seq > watch.last_seq:
                watch.last_seq = event.seq
                out.append(event)
        return out
