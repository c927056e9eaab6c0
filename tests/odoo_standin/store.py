"""Tables whose rows journal their own changes: the undo log and the field indexes.

Every stored row is a ``StoredRow`` and every table a ``StoredTable``: both are plain ``dict``s for
readers, but each write (``row[f] = v``, ``row.update()``, ``table[id] = row``, ``table.pop(id)``)
goes through the owning ``Store``, which

- inside a transaction, records what the change overwrites (the row's prior values the first time
  the row is touched, the inserted/removed table entries) so a rollback restores exactly those, at
  a cost that depends on what the call touched and not on the size of the tables;
- keeps an equality index (value -> ids) per indexed field, plus for string fields a sorted list
  of the distinct values so ``=like 'prefix%'`` finds its candidates by bisection.

Indexes are only ever used as a pre-filter (a superset of the matching ids); the domain is still
evaluated on every candidate, so they cannot change what a search answers.

Write conflicts (PostgreSQL REPEATABLE READ, "first updater wins"): the store counts committed
write transactions (``commit_seq``) and every row remembers the commit that last changed it
(``StoredRow._stamp``; 0 for rows never changed by a tracked commit). A top-level transaction may
be opened with a ``snapshot`` (the ``commit_seq`` it saw when it began); its first change to a row
stamped after that snapshot, or its removal of such a row, raises ``WriteConflict`` before the
write happens, and the caller's rollback undoes the rest. Without a snapshot (the default: it is
then the state seen under the lock, which nothing can have overtaken) nothing is checked, so the
check costs one comparison per row touched only when a transaction was really held open.

Tables keep their rows in id order: ids only grow (``next_ids``), and a rollback that puts back a
removed row re-sorts that table, so iteration order is the same as before the failed call.
"""

from __future__ import annotations

import copy
from bisect import bisect_left, insort
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

MISSING: Any = object()  # "no such key in the row" (never stored)


class FieldIndex:
    """Ids by value for one field; ``keys`` (string fields only) sorts the distinct values.

    A value held by one row maps to its id, by several to a set of ids (most values of a unique
    reference are held by one row: no set per row to allocate and to walk in garbage collection).
    """

    __slots__ = ("buckets", "keys")

    def __init__(self, prefix: bool) -> None:
        self.buckets: dict[Any, int | set[int]] = {}
        # None when prefix search is off, or once a non-string value made it unsafe.
        self.keys: list[str] | None = [] if prefix else None

    def add(self, value: Any, rec_id: int) -> None:
        """Raises ``TypeError`` for an unhashable value (the caller then drops the index)."""
        if value is MISSING:
            return
        held = self.buckets.get(value)
        if isinstance(held, set):
            held.add(rec_id)
        elif held is not None:
            if held != rec_id:
                self.buckets[value] = {held, rec_id}
        else:
            self.buckets[value] = rec_id
            if self.keys is not None:
                if isinstance(value, str):
                    insort(self.keys, value)
                elif value is not False and value is not None:
                    self.keys = None  # a like on str(value) could match: no safe prefix range

    def discard(self, value: Any, rec_id: int) -> None:
        if value is MISSING:
            return
        held = self.buckets.get(value)
        if isinstance(held, set):
            held.discard(rec_id)
            if len(held) == 1:
                self.buckets[value] = next(iter(held))
            return
        if held is None or held != rec_id:
            return
        del self.buckets[value]
        if self.keys is not None and isinstance(value, str):
            at = bisect_left(self.keys, value)
            if at < len(self.keys) and self.keys[at] == value:
                del self.keys[at]

    def equal(self, value: Any) -> set[int]:
        """Ids whose value ``== value``; raises ``TypeError`` if ``value`` is unhashable."""
        held = self.buckets.get(value)
        if held is None:
            return set()
        return set(held) if isinstance(held, set) else {held}

    def prefixed(self, prefix: str) -> set[int] | None:
        """Ids whose (string) value starts with ``prefix``; None if prefix search is off."""
        if self.keys is None:
            return None
        out: set[int] = set()
        at = bisect_left(self.keys, prefix)
        while at < len(self.keys) and self.keys[at].startswith(prefix):
            out |= self.equal(self.keys[at])
            at += 1
        return out


class WriteConflict(Exception):
    """A transaction changed (or removed) a row that a transaction committed after its snapshot."""

    def __init__(self, model: str, rec_id: Any, stamp: int, snapshot: int) -> None:
        super().__init__(f"{model}({rec_id},) changed by commit {stamp}, after snapshot {snapshot}")
        self.model, self.rec_id, self.stamp, self.snapshot = model, rec_id, stamp, snapshot


class StoredRow(dict[str, Any]):
    """A row of a ``StoredTable``: a dict whose writes are journaled and indexed. ``_stamp`` is
    the ``commit_seq`` of the last committed transaction that changed it."""

    __slots__ = ("_model", "_stamp", "_store")

    def __init__(self, store: Store, model: str, values: dict[str, Any]) -> None:
        dict.__init__(self, values)
        self._store = store
        self._model = model
        self._stamp = 0

    def __setitem__(self, key: str, value: Any) -> None:
        self._store._changing(self._model, self, key, value)
        dict.__setitem__(self, key, value)

    def __delitem__(self, key: str) -> None:
        if key in self:
            self._store._changing(self._model, self, key, MISSING)
        dict.__delitem__(self, key)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        return self[key]

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            value = self[key]
            del self[key]
            return value
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[str, Any]:
        key = next(reversed(self))
        return key, self.pop(key)

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def __ior__(self, other: Any) -> StoredRow:  # type: ignore[override,misc]
        self.update(other)
        return self

    # Copies are plain dicts: never drag the store (the whole database) along.
    def copy(self) -> dict[str, Any]:
        return dict(self)

    def __copy__(self) -> dict[str, Any]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(dict(self), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (dict(self),))


class StoredTable(dict[int, dict[str, Any]]):
    """One model's rows by id: inserts and removals are journaled and indexed. A plain dict
    stored into it is wrapped into a ``StoredRow`` (read it back from the table)."""

    __slots__ = ("_model", "_store")

    def __init__(self, store: Store, model: str) -> None:
        dict.__init__(self)
        self._store = store
        self._model = model

    def __setitem__(self, rec_id: int, row: dict[str, Any]) -> None:
        if not (isinstance(row, StoredRow) and row._store is self._store and row._model == self._model):
            row = StoredRow(self._store, self._model, row)
        self._store._putting(self._model, self, rec_id, row)

    def __delitem__(self, rec_id: int) -> None:
        if rec_id not in self:
            raise KeyError(rec_id)
        self._store._removing(self._model, self, rec_id)

    def pop(self, rec_id: int, *default: Any) -> Any:
        if rec_id in self:
            return self._store._removing(self._model, self, rec_id)
        return dict.pop(self, rec_id, *default)

    def popitem(self) -> tuple[int, dict[str, Any]]:
        rec_id = next(reversed(self))
        return rec_id, self.pop(rec_id)

    def clear(self) -> None:
        for rec_id in list(self):
            self.pop(rec_id)

    def update(self, *args: Any, **kwargs: Any) -> None:
        for rec_id, row in dict(*args, **kwargs).items():
            self[rec_id] = row

    def setdefault(self, rec_id: int, default: Any = None) -> Any:
        if rec_id not in self:
            self[rec_id] = default
        return self[rec_id]

    def __ior__(self, other: Any) -> StoredTable:  # type: ignore[override,misc]
        self.update(other)
        return self

    def copy(self) -> dict[int, dict[str, Any]]:
        return dict(self)

    def __copy__(self) -> dict[int, dict[str, Any]]:
        return dict(self)

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[int, dict[str, Any]]:
        return {rec_id: copy.deepcopy(dict(row), memo) for rec_id, row in self.items()}

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, ({rec_id: dict(row) for rec_id, row in self.items()},))

    def restore_order(self) -> None:
        """Back to id order after a rollback re-inserted a row (bypasses the journal)."""
        items = sorted(dict.items(self))
        dict.clear(self)
        dict.update(self, items)


# Undo entries, replayed last-first on rollback:
#   ("row", model, row, prior values)   the row's content before its first change
#   ("put", model, id, previous row)    table[id] was set; previous is None for an insert
#   ("removed", model, id, row)         table.pop(id) took that row out
UndoEntry = tuple[str, str, Any, Any]


@dataclass
class Savepoint:
    mark: int  # undo log length when taken
    outer_touched: set[int] | None  # the enclosing savepoint's touched rows (None: top level)
    extra: Any = None  # the subclass's own state (counters, effects length)
    touched: set[int] = field(default_factory=set)


class Store:
    """Tables, their indexes and the undo log of the open transaction (if any)."""

    def __init__(self) -> None:
        self.tables: dict[str, StoredTable] = {}
        self._indexes: dict[str, dict[str, FieldIndex]] = {}
        self._undo: list[UndoEntry] | None = None  # None: no transaction open
        self._touched: set[int] = set()  # id() of rows whose prior state is already logged
        self.commit_seq = 0  # committed write transactions so far (never reset: snapshots stay valid)
        self._snapshot: int | None = None  # the open transaction's snapshot, if it must be checked

    def reset_tables(self, indexed: dict[str, dict[str, bool]]) -> None:
        """Empty tables; ``indexed`` is model -> field -> prefix search wanted."""
        self._undo, self._touched, self._snapshot = None, set(), None
        self.tables = {model: StoredTable(self, model) for model in indexed}
        self._indexes = {
            model: {name: FieldIndex(prefix) for name, prefix in fields.items()} for model, fields in indexed.items()
        }

    def new_row(self, model: str, values: dict[str, Any]) -> StoredRow:
        return StoredRow(self, model, values)

    def index(self, model: str, name: str) -> FieldIndex | None:
        return self._indexes.get(model, {}).get(name)

    def ids_equal(self, model: str, name: str, value: Any) -> list[int]:
        """Sorted ids of ``model`` rows whose ``name == value`` (index or scan)."""
        index = self.index(model, name)
        if index is not None:
            try:
                return sorted(index.equal(value))
            except TypeError:
                pass
        return sorted(i for i, row in self.tables[model].items() if row.get(name) == value)

    # ------------------------------------------------------------------ transactions

    def _extra_state(self) -> Any:
        """State outside the tables that a rollback must restore (subclass hook)."""
        return None

    def _restore_extra(self, state: Any) -> None:
        return None

    @contextmanager
    def transaction(self, snapshot: int | None = None) -> Iterator[None]:
        """All changes made inside are undone if it raises; nests (inner = savepoint).

        ``snapshot`` (top level only): the ``commit_seq`` this transaction began from; changing a
        row committed after it raises ``WriteConflict``. None: begins now (nothing to check)."""
        savepoint = self._begin(snapshot)
        try:
            yield
        except BaseException:
            self._rollback(savepoint)
            raise
        self._release(savepoint)

    def _begin(self, snapshot: int | None = None) -> Savepoint:
        outer = self._touched if self._undo is not None else None
        if self._undo is None:
            self._undo = []
            # Only a snapshot older than the last commit can meet a newer row.
            self._snapshot = snapshot if snapshot is not None and snapshot < self.commit_seq else None
        savepoint = Savepoint(len(self._undo), outer, self._extra_state())
        self._touched = savepoint.touched
        return savepoint

    def _release(self, savepoint: Savepoint) -> None:
        if savepoint.outer_touched is None:
            undo = self._undo
            if undo:  # a write transaction commits: stamp every row it changed or inserted
                self.commit_seq += 1
                for kind, _model, target, _before in undo:
                    if kind == "row":
                        target._stamp = self.commit_seq
            self._undo, self._touched, self._snapshot = None, set(), None
        else:  # the enclosing transaction may still roll these changes back
            savepoint.outer_touched |= savepoint.touched
            self._touched = savepoint.outer_touched

    def _rollback(self, savepoint: Savepoint) -> None:
        undo = self._undo
        assert undo is not None
        entries = undo[savepoint.mark :]
        del undo[savepoint.mark :]
        self._undo = None  # replaying must not journal itself
        reorder: set[str] = set()
        try:
            for kind, model, target, before in reversed(entries):
                table = self.tables[model]
                if kind == "row":
                    self._reindex(model, target, before)
                elif kind == "put":
                    if before is None:
                        self._removing(model, table, target)
                    else:
                        self._putting(model, table, target, before)
                else:  # "removed"
                    self._putting(model, table, target, before)
                    reorder.add(model)
            for model in reorder:
                self.tables[model].restore_order()
            self._restore_extra(savepoint.extra)
        finally:
            self._undo = None if savepoint.outer_touched is None else undo
            self._touched = savepoint.outer_touched if savepoint.outer_touched is not None else set()
            if savepoint.outer_touched is None:
                self._snapshot = None

    # ------------------------------------------------------------------ change hooks

    def _check_snapshot(self, model: str, row: dict[str, Any]) -> None:
        stamp = cast(StoredRow, row)._stamp  # every stored row is a StoredRow
        if self._snapshot is not None and stamp > self._snapshot:
            raise WriteConflict(model, dict.get(row, "id"), stamp, self._snapshot)

    def _log_row(self, model: str, row: StoredRow) -> None:
        if self._undo is not None and id(row) not in self._touched:
            self._check_snapshot(model, row)  # before anything is changed or logged
            self._touched.add(id(row))
            self._undo.append(("row", model, row, dict(row)))

    def _attached(self, model: str, row: StoredRow) -> bool:
        return self.tables[model].get(dict.get(row, "id")) is row  # type: ignore[arg-type]

    def _index_put(self, model: str, row: dict[str, Any], rec_id: int, add: bool) -> None:
        indexes = self._indexes.get(model, {})
        for name, index in list(indexes.items()):
            value = dict.get(row, name, MISSING)
            try:
                index.add(value, rec_id) if add else index.discard(value, rec_id)
            except TypeError:  # unhashable value: this field is searched by scanning from now on
                del indexes[name]

    def _changing(self, model: str, row: StoredRow, key: str, value: Any) -> None:
        self._log_row(model, row)
        index = self._indexes.get(model, {}).get(key)
        if index is None or not self._attached(model, row):
            return
        old = dict.get(row, key, MISSING)
        if old is value:
            return
        rec_id = dict.__getitem__(row, "id")
        try:
            index.discard(old, rec_id)
            index.add(value, rec_id)
        except TypeError:
            del self._indexes[model][key]

    def _reindex(self, model: str, row: StoredRow, values: dict[str, Any]) -> None:
        """Replace the row's content (rollback), keeping the indexes right."""
        attached = self._attached(model, row)
        if attached:
            self._index_put(model, row, dict.__getitem__(row, "id"), add=False)
        dict.clear(row)
        dict.update(row, values)
        if attached:
            self._index_put(model, row, dict.__getitem__(row, "id"), add=True)

    def _putting(self, model: str, table: StoredTable, rec_id: int, row: StoredRow) -> None:
        previous = dict.get(table, rec_id)
        if previous is not None and self._undo is not None:
            self._check_snapshot(model, previous)  # replacing a row is writing it
        if previous is not None:
            self._index_put(model, previous, rec_id, add=False)
        if self._undo is not None:
            self._log_row(model, row)  # its content as stored now (logged first, undone last)
            self._undo.append(("put", model, rec_id, previous))
        dict.__setitem__(table, rec_id, row)
        self._index_put(model, row, rec_id, add=True)

    def _removing(self, model: str, table: StoredTable, rec_id: int) -> StoredRow:
        if self._undo is not None:
            self._check_snapshot(model, dict.__getitem__(table, rec_id))  # DELETE conflicts too
        row: StoredRow = dict.pop(table, rec_id)  # type: ignore[assignment]
        self._index_put(model, row, rec_id, add=False)
        if self._undo is not None:
            self._undo.append(("removed", model, rec_id, row))
        return row
