"""Row-level ORM helpers with Odoo semantics: browse, search, read, create, write, unlink.

These work inside the caller's transaction (the global call lock plus the undo log opened by
``rpc.Dispatcher``), so they mutate tables in place and raise ``OdooError`` like Odoo would.

Searches evaluate the domain lazily (a leaf reads just its field; computed fields are computed
only when a leaf or the order needs them) and, when the domain is well formed, first narrow the
rows with the field indexes (``store.FieldIndex``): equality and ``in`` on ``id`` and on stored
char/many2one fields, ``=like 'prefix%'`` on stored char fields, combined through ``&``/``|``.
The domain is then evaluated on those candidates exactly as on a full scan.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from .domain import OPERATORS, LeafValue, is_empty, like_prefix, matches, mentions
from .models import (
    COMPUTES,
    PREPARE,
    RECOMPUTE,
    Env,
    OdooError,
    empty_value,
    validation_error,
    value_error,
)
from .schema import Field, ModelSpec, Row


def browse_rows(env: Env, model: str, ids: Sequence[int]) -> list[Row]:
    table = env.table(model)
    missing = [i for i in ids if i not in table]
    if missing:
        raise OdooError(
            "odoo.exceptions.MissingError",
            "Record does not exist or has been deleted.\n"
            f"(Record: {model}({', '.join(map(str, missing))},), User: {env.uid})",
        )
    return [table[i] for i in ids]


def children(env: Env, f: Field, parent_id: int) -> list[int]:
    assert f.relation and f.inverse
    return env.db.ids_equal(f.relation, f.inverse, parent_id)


def full_row(env: Env, model: str, row: Row) -> Row:
    """The row as Odoo reads it: stored values plus one2many ids and computed fields."""
    spec = env.spec(model)
    out = dict(row)
    for name, f in spec.fields.items():
        if f.type == "one2many":
            out[name] = children(env, f, row["id"])
    hook = COMPUTES.get(model)
    if hook:
        out.update(hook(env, row))
    if "display_name" not in out:
        out["display_name"] = row.get(spec.rec_name) or f"{model},{row['id']}"
    return out


def field_value(env: Env, model: str, row: Row, name: str) -> Any:
    """``full_row(env, model, row)[name]``, computing only what that one field needs."""
    f = env.spec(model).fields[name]
    if f.type == "one2many":
        return children(env, f, row["id"])
    if f.computed or name not in row:
        return full_row(env, model, row)[name]
    return row[name]


def display_name(env: Env, model: str, rec_id: int) -> str:
    row = env.table(model).get(rec_id)
    return str(full_row(env, model, row)["display_name"]) if row else f"{model},{rec_id}"


def _lookup(env: Env, model: str, row: Row) -> Callable[[str], list[LeafValue]]:
    def resolve(path: str) -> list[LeafValue]:
        current = [(model, row)]
        parts = path.split(".")
        for depth, part in enumerate(parts):
            out: list[LeafValue] = []
            following: list[tuple[str, Row]] = []
            for cur_model, cur_row in current:
                f = env.spec(cur_model).fields.get(part)
                if f is None:
                    raise value_error(f"Invalid field {part!r} on model {cur_model!r}")
                value = field_value(env, cur_model, cur_row, part)
                if depth == len(parts) - 1:
                    shown = (
                        display_name(env, f.relation, value) if f.relation and value and f.type == "many2one" else None
                    )
                    out.append(LeafValue(value, f.type, shown))
                elif f.relation:
                    ids = value if isinstance(value, list) else ([value] if value else [])
                    table = env.table(f.relation)
                    following += [(f.relation, table[i]) for i in ids if i in table]
                else:
                    raise value_error(f"Invalid path {path!r}: {part!r} is not relational")
            if depth == len(parts) - 1:
                return out
            current = following
        return []

    return resolve


def parse_order(spec: ModelSpec, order: str | None) -> list[tuple[str, bool]]:
    if not order:
        return list(spec.order)
    result: list[tuple[str, bool]] = []
    for part in order.split(","):
        tokens = part.split()
        direction = tokens[1].lower() if len(tokens) > 1 else "asc"
        if not tokens or tokens[0] not in spec.fields or direction not in ("asc", "desc") or len(tokens) > 2:
            raise value_error(
                f'Invalid "order" specified ({order}). A valid "order" specification is a '
                "comma-separated list of valid field names (optionally followed by asc/desc "
                "for the direction)"
            )
        result.append((tokens[0], direction == "desc"))
    return result


def _sort_key(value: Any, ftype: str) -> tuple[int, Any]:
    # PostgreSQL sorts NULLs last ascending (first descending): model them as the largest key.
    null = value is None or (value is False and ftype not in ("boolean",))
    return (1, 0) if null else (0, value)


def _valid_path(env: Env, model: str, path: str) -> bool:
    """True if every part of ``path`` is a field and every hop a relation to a known model."""
    parts = path.split(".")
    for depth, part in enumerate(parts):
        f = env.spec(model).fields.get(part)
        if f is None:
            return False
        if depth < len(parts) - 1:
            if not f.relation or f.relation not in env.db.schema:
                return False
            model = f.relation
    return True


def _checked(env: Env, model: str, domain: list[Any]) -> bool:
    """True if evaluating ``domain`` cannot raise: then it may be evaluated on fewer rows than
    the whole table (a malformed one goes through the full scan, which raises as it always has)."""
    depth = 0
    for term in reversed(domain):
        if isinstance(term, str):
            arity = 1 if term == "!" else 2
            if term not in ("&", "|", "!") or depth < arity:
                return False
            depth -= arity - 1
        elif isinstance(term, list | tuple) and len(term) == 3:
            path, operator = term[0], term[1]
            if isinstance(path, str) and not (
                isinstance(operator, str) and operator.lower() in OPERATORS and _valid_path(env, model, path)
            ):
                return False
            depth += 1
        else:
            return False
    return True


def _equal_ids(env: Env, model: str, name: str, values: list[Any]) -> set[int] | None:
    """Ids of the rows whose ``name`` equals one of ``values`` (None: no index answers that)."""
    if any(v is None or v is False for v in values):
        return None  # empty values also match NULLs: left to the scan
    try:
        if name == "id":
            table = env.table(model)
            return {table[v]["id"] for v in values if v in table}
        index = env.db.index(model, name)
        if index is None or (
            env.spec(model).fields[name].type == "many2one" and any(isinstance(v, str) for v in values)
        ):
            return None  # a many2one compared with a string matches on the display name
        out: set[int] = set()
        for v in values:
            out |= index.equal(v)
        return out
    except TypeError:  # unhashable value
        return None


def _leaf_ids(env: Env, model: str, leaf: Any) -> set[int] | None:
    """A superset of the ids ``leaf`` selects, or None (any row may match)."""
    path, operator, right = leaf
    if not isinstance(path, str) or "." in path:
        return None
    operator = operator.lower()
    if operator in ("=", "=?"):
        return _equal_ids(env, model, path, [right])
    if operator == "in":
        return _equal_ids(env, model, path, list(right) if isinstance(right, list | tuple | set) else [right])
    if operator == "=like" and isinstance(right, str) and like_prefix(right):
        index = env.db.index(model, path)
        if index is not None:
            return index.prefixed(like_prefix(right))
    return None


def _both(first: set[int] | None, second: set[int] | None) -> set[int] | None:
    if first is None:
        return second
    return first if second is None else first & second


def _domain_ids(env: Env, model: str, domain: list[Any]) -> set[int] | None:
    """A superset of the ids a ``_checked`` domain selects, or None (scan everything)."""
    stack: list[set[int] | None] = []
    for term in reversed(domain):  # the same walk as domain.matches
        if term == "!":
            stack.pop()
            stack.append(None)
        elif term in ("&", "|"):
            first, second = stack.pop(), stack.pop()
            if term == "&":
                stack.append(_both(first, second))
            else:
                stack.append(None if first is None or second is None else first | second)
        else:
            stack.append(_leaf_ids(env, model, term))
    result: set[int] | None = None
    for ids in stack:
        result = _both(result, ids)
    return result


def search_stored(
    env: Env,
    model: str,
    domain: Any,
    offset: int = 0,
    limit: int | None = None,
    order: str | None = None,
) -> list[Row]:
    """The stored rows ``search`` selects, in order (read them with ``full_row``)."""
    spec = env.spec(model)
    domain = list(domain or [])
    # Odoo's implicit active test: archived rows are hidden unless the domain mentions `active`.
    if "active" in spec.fields and env.context.get("active_test", True) and not mentions(domain, "active"):
        domain = [("active", "=", True), *domain]
    table = env.table(model)
    ids = _domain_ids(env, model, domain) if _checked(env, model, domain) else None
    candidates = table.values() if ids is None else [table[i] for i in sorted(ids) if i in table]
    rows = [r for r in candidates if matches(domain, _lookup(env, model, r))]
    rows.sort(key=lambda r: r["id"])
    for name, desc in reversed(parse_order(spec, order)):  # stable sorts, last key first
        ftype = spec.fields[name].type

        def key(r: Row, n: str = name, t: str = ftype) -> tuple[int, Any]:
            return _sort_key(field_value(env, model, r, n), t)

        rows.sort(key=key, reverse=desc)
    rows = rows[int(offset or 0) :]
    return rows[: int(limit)] if limit else rows


def search_rows(
    env: Env,
    model: str,
    domain: Any,
    offset: int = 0,
    limit: int | None = None,
    order: str | None = None,
) -> list[Row]:
    """The rows ``search`` selects as Odoo reads them (``full_row``), in order."""
    return [full_row(env, model, r) for r in search_stored(env, model, domain, offset, limit, order)]


def convert(env: Env, model: str, name: str, f: Field, value: Any) -> Any:
    """Coerce an RPC value to the stored form, rejecting what PostgreSQL/the ORM would."""
    if value is None:
        value = False
    if f.type == "many2one":
        if value is False:
            return False
        if isinstance(value, bool) or not isinstance(value, int):
            raise value_error(f"Wrong value for {model}.{name}: {value!r}")
        assert f.relation is not None
        if f.relation not in env.db.tables or value not in env.table(f.relation):
            # Odoo turns the FK IntegrityError into a ValidationError.
            raise validation_error(
                f"The operation cannot be completed: {model}.{name} refers to a record that "
                f"does not exist ({f.relation}({value},))"
            )
        return value
    if f.type in ("float", "monetary", "integer"):
        if value is False:
            return empty_value(f)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise value_error(f"Wrong value for {model}.{name}: {value!r}")
        return int(value) if f.type == "integer" else float(value)
    if f.type == "boolean":
        return bool(value)
    if f.type == "selection":
        if value is not False and value not in {k for k, _ in f.selection or ()}:
            raise value_error(f"Wrong value for {model}.{name}: {value!r}")
        return value
    return value if value is False else str(value)


def _apply_o2m(env: Env, f: Field, parent_id: int, commands: Any) -> None:
    """Odoo x2many commands on a one2many: (0,0,vals) (1,id,vals) (2,id) (3,id) (4,id) (5,)
    (6,0,ids)."""
    assert f.relation and f.inverse
    if not isinstance(commands, list | tuple):
        raise value_error(f"Invalid one2many commands {commands!r}")
    for cmd in commands:
        code = cmd[0] if isinstance(cmd, list | tuple) and cmd else None
        if code == 0:
            create_rows(env, f.relation, [{**cmd[2], f.inverse: parent_id}])
        elif code == 1:
            write_rows(env, f.relation, [cmd[1]], cmd[2])
        elif code in (2, 3):  # the inverse is required here, so unlinking deletes the line
            unlink_rows(env, f.relation, [cmd[1]])
        elif code == 4:
            write_rows(env, f.relation, [cmd[1]], {f.inverse: parent_id})
        elif code in (5, 6):
            keep = set(cmd[2]) if code == 6 else set()
            unlink_rows(env, f.relation, [i for i in children(env, f, parent_id) if i not in keep])
            for child in keep:
                write_rows(env, f.relation, [child], {f.inverse: parent_id})
        else:
            raise value_error(f"Invalid x2many command {cmd!r}")


def _split_vals(env: Env, model: str, vals: Any) -> tuple[Row, dict[str, Any]]:
    """Stored values and one2many commands; unknown and computed fields are ignored (Odoo only
    logs a warning for them)."""
    if not isinstance(vals, dict):
        raise value_error(f"Invalid values for {model}: {vals!r}")
    stored: Row = {}
    o2m: dict[str, Any] = {}
    for name, value in vals.items():
        f = env.spec(model).fields.get(name)
        if f is None or f.computed or name == "id":
            continue
        if f.type == "one2many":
            o2m[name] = value
        else:
            stored[name] = convert(env, model, name, f, value)
    return stored, o2m


def default_values(env: Env, model: str, names: Sequence[str]) -> Row:
    """Field defaults, overridden by ``default_<field>`` context keys as in Odoo."""
    out: Row = {}
    for name in names:
        f = env.spec(model).fields.get(name)
        if f is None:
            continue
        if f"default_{name}" in env.context:
            out[name] = env.context[f"default_{name}"]
        elif f.default is not None:
            out[name] = f.default
    return out


def create_rows(env: Env, model: str, vals_list: list[Any]) -> list[int]:
    spec = env.spec(model)
    ids: list[int] = []
    for vals in vals_list:
        if not isinstance(vals, dict):
            raise value_error(f"Invalid values for {model}: {vals!r}")
        if model in PREPARE:  # sees only what the caller passed, before plain defaults
            vals = PREPARE[model](env, dict(vals))
        merged = {**default_values(env, model, list(spec.fields)), **vals}
        stored, o2m = _split_vals(env, model, merged)
        for name, f in spec.fields.items():
            if f.required and not f.computed and is_empty(stored.get(name), f.type):
                raise validation_error(f"The operation cannot be completed: Missing required fields on {model}")
        stored.pop("id", None)
        row = env.db.insert(model, stored)
        for name, commands in o2m.items():
            _apply_o2m(env, spec.fields[name], row["id"], commands)
        if model in RECOMPUTE:
            RECOMPUTE[model](env, row)
        ids.append(row["id"])
    return ids


def write_rows(env: Env, model: str, ids: Sequence[int], vals: Any) -> None:
    rows = browse_rows(env, model, ids)
    stored, o2m = _split_vals(env, model, vals)
    spec = env.spec(model)
    for name, value in stored.items():
        if spec.fields[name].required and is_empty(value, spec.fields[name].type):
            raise validation_error(f"The operation cannot be completed: Missing required fields on {model}")
    for row in rows:
        row.update(stored)
        for name, commands in o2m.items():
            _apply_o2m(env, spec.fields[name], row["id"], commands)
        if model in RECOMPUTE:
            RECOMPUTE[model](env, row)


def unlink_rows(env: Env, model: str, ids: Sequence[int]) -> None:
    table = env.table(model)
    for rec_id in ids:
        if table.pop(rec_id, None) is None:
            continue
        for f in env.spec(model).fields.values():  # ondelete='cascade' of one2many lines
            if f.type == "one2many":
                unlink_rows(env, str(f.relation), children(env, f, rec_id))


def read_rows(env: Env, model: str, rows: list[Row], fields: Any, load: Any) -> list[Row]:
    spec = env.spec(model)
    names = list(fields) if fields else [n for n in spec.fields]
    for name in names:
        if name not in spec.fields:
            raise value_error(f"Invalid field {name!r} on model {model!r}")
    result: list[Row] = []
    for row in rows:
        full = full_row(env, model, row)
        out: Row = {"id": row["id"]}
        for name in names:
            f, value = spec.fields[name], full[name]
            if f.type == "many2one" and value and load == "_classic_read":
                value = [value, display_name(env, str(f.relation), value)]  # (id, display_name)
            out[name] = value
        result.append(out)
    return result
