"""Core of the in-memory Odoo: errors, effects, the method registries, the database, ``call``.

Business models (``business.py``) plug in through the registries below: ``METHODS`` (RPC-callable
methods), ``COMPUTES`` (non-stored fields filled on read), ``RECOMPUTE`` (stored computed fields
refreshed after create/write) and ``PREPARE`` (defaults that depend on other values).
"""

from __future__ import annotations

import copy
import functools
import inspect
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from .schema import SUPERUSER_ID, Field, ModelSpec, Row, build_schema, demo_rows
from .store import Store, StoredRow

F = TypeVar("F", bound=Callable[..., Any])


class OdooError(Exception):
    """An exception as Odoo serializes it: ``name`` is the dotted class name on the wire."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


def user_error(message: str) -> OdooError:
    return OdooError("odoo.exceptions.UserError", message)


def validation_error(message: str) -> OdooError:
    return OdooError("odoo.exceptions.ValidationError", message)


def value_error(message: str) -> OdooError:
    return OdooError("builtins.ValueError", message)


@dataclass
class Effect:
    """One committed mutating call, recorded even if its reply is later lost by a fault."""

    seq: int
    model: str
    method: str
    ids: list[int]
    values: Any
    context: dict[str, Any]
    at: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MethodSpec:
    fn: Callable[..., Any]
    on_records: bool  # Odoo "record" method: args[0] is the ids (not @api.model)
    versions: tuple[int, int] = (16, 19)


METHODS: dict[tuple[str | None, str], MethodSpec] = {}
COMPUTES: dict[str, Callable[[Env, Row], Row]] = {}
RECOMPUTE: dict[str, Callable[[Env, Row], None]] = {}
PREPARE: dict[str, Callable[[Env, Row], Row]] = {}


def method(
    model: str | None, name: str, *, on_records: bool = False, versions: tuple[int, int] = (16, 19)
) -> Callable[[F], F]:
    """Register an RPC-callable method (``model=None``: available on every model)."""

    def register(fn: F) -> F:
        METHODS[(model, name)] = MethodSpec(fn, on_records, versions)
        return fn

    return register


def now_str() -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())


def empty_value(f: Field) -> Any:
    if f.type in ("float", "monetary"):
        return 0.0
    return 0 if f.type == "integer" else False


# Stored fields of these types get an equality index (char ones a prefix index too).
INDEXED_TYPES = frozenset({"char", "many2one"})


class Database(Store):
    """All tables of one Odoo database. Not thread-safe: callers hold the global call lock.

    ``transaction()`` (from ``Store``) undoes a failed call: the rows and table entries it
    touched, the id counters, the sequences and the effects it recorded.
    """

    def __init__(self, major: int, login: str) -> None:
        super().__init__()
        self.major = major
        self.login = login
        self.schema: dict[str, ModelSpec] = build_schema(major)
        self.reset()

    def reset(self) -> None:
        self.reset_tables(
            {
                model: {
                    name: f.type == "char"
                    for name, f in spec.fields.items()
                    if f.type in INDEXED_TYPES and not f.computed
                }
                for model, spec in self.schema.items()
            }
        )
        self.next_ids: dict[str, int] = {name: 1 for name in self.schema}
        self.sequences: dict[str, int] = {}
        self.effects: list[Effect] = []
        for model, rows in demo_rows(self.major, self.login).items():
            for row in rows:
                self.insert(model, row)
        for index, spec in enumerate(self.schema.values(), start=1):
            self.insert("ir.model", {"id": index, "name": spec.description, "model": spec.name})
        env = Env(self, SUPERUSER_ID, {})
        for model, hook in RECOMPUTE.items():
            for row in self.tables[model].values():
                hook(env, row)

    def insert(self, model: str, values: Row) -> StoredRow:
        """Store a row with every stored field present (defaults filled, id assigned if absent)."""
        spec = self.schema[model]
        row: Row = {
            name: (f.default if f.default is not None else empty_value(f))
            for name, f in spec.fields.items()
            if not f.computed and f.type != "one2many"
        }
        row.update(values)
        if not row.get("id"):
            row["id"] = self.next_ids[model]
        self.next_ids[model] = max(self.next_ids[model], row["id"] + 1)
        stored = self.new_row(model, row)
        self.tables[model][row["id"]] = stored
        return stored

    def next_sequence(self, code: str) -> int:
        self.sequences[code] = self.sequences.get(code, 0) + 1
        return self.sequences[code]

    def _extra_state(self) -> Any:
        return dict(self.next_ids), dict(self.sequences), len(self.effects)

    def _restore_extra(self, state: Any) -> None:
        next_ids, sequences, n_effects = state
        self.next_ids, self.sequences = next_ids, sequences
        del self.effects[n_effects:]


@dataclass
class Env:
    db: Database
    uid: int
    context: dict[str, Any]

    @property
    def major(self) -> int:
        return self.db.major

    def spec(self, model: str) -> ModelSpec:
        return self.db.schema[model]

    def table(self, model: str) -> dict[int, Row]:
        return self.db.tables[model]

    def effect(self, model: str, method_name: str, ids: list[int], values: Any) -> None:
        seq = self.db.effects[-1].seq + 1 if self.db.effects else 1
        self.db.effects.append(
            Effect(
                seq,
                model,
                method_name,
                list(ids),
                copy.deepcopy(values),
                copy.deepcopy(self.context),
                time.time(),
            )
        )


def normalize_ids(ids: Any) -> list[int]:
    if isinstance(ids, int) and not isinstance(ids, bool):
        return [ids]
    if isinstance(ids, list | tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        return list(ids)
    raise value_error(f"Invalid ids {ids!r}")


@functools.cache
def _signature(fn: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(fn)


def call(env: Env, model: str, name: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Run ``model.name`` like Odoo's ``call_kw``; the caller handles transactions."""
    spec = METHODS.get((model, name)) or METHODS.get((None, name))
    if spec is None or not spec.versions[0] <= env.major <= spec.versions[1]:
        raise OdooError("builtins.AttributeError", f"The method '{model}.{name}' does not exist")
    if spec.on_records:
        if not args:
            raise OdooError("builtins.IndexError", "list index out of range")
        bound: list[Any] = [env, model, normalize_ids(args[0]), *args[1:]]
    else:
        bound = [env, model, *args]
    try:
        _signature(spec.fn).bind(*bound, **kwargs)
    except TypeError as exc:
        raise OdooError("builtins.TypeError", f"{name}() {exc}") from exc
    return spec.fn(*bound, **kwargs)
