"""The generic ORM methods every Odoo model exposes over RPC (``BaseModel`` public API).

Signatures mirror Odoo 17 so that positional/keyword calls bind (or fail with ``TypeError``) the
same way; mutating methods record an ``Effect`` once their changes are in place.
"""

from __future__ import annotations

from typing import Any

from .domain import LeafValue, matches
from .models import Env, method, normalize_ids, value_error
from .orm import (
    browse_rows,
    create_rows,
    default_values,
    display_name,
    read_rows,
    search_rows,
    search_stored,
    unlink_rows,
    write_rows,
)
from .schema import Row


@method(None, "search")
def search(
    env: Env,
    model: str,
    domain: Any = None,
    offset: int = 0,
    limit: int | None = None,
    order: str | None = None,
    count: bool = False,
) -> Any:
    rows = search_stored(env, model, domain, offset, limit, order)
    return len(rows) if count else [r["id"] for r in rows]  # `count` is the <= 16 spelling


@method(None, "search_count")
def search_count(env: Env, model: str, domain: Any = None, limit: int | None = None) -> int:
    return len(search_stored(env, model, domain, 0, limit, None))


@method(None, "search_read")
def search_read(
    env: Env,
    model: str,
    domain: Any = None,
    fields: Any = None,
    offset: int = 0,
    limit: int | None = None,
    order: str | None = None,
    load: Any = "_classic_read",
) -> list[Row]:
    rows = search_rows(env, model, domain, offset, limit, order)
    return read_rows(env, model, rows, fields, load)


@method(None, "read", on_records=True)
def read(env: Env, model: str, ids: list[int], fields: Any = None, load: Any = "_classic_read") -> list[Row]:
    return read_rows(env, model, browse_rows(env, model, ids), fields, load)


def created_result(vals: Any, ids: list[int]) -> Any:
    """``create(dict)`` answers an id, ``create(list)`` a list of ids
    (Odoo's ``_call_kw_model_create``)."""
    return ids[0] if isinstance(vals, dict) else ids


def as_vals_list(vals: Any) -> list[Any]:
    if isinstance(vals, dict):
        return [vals]
    if isinstance(vals, list):
        return vals
    raise value_error(f"Invalid values {vals!r}")


@method(None, "create")
def create(env: Env, model: str, vals_list: Any) -> Any:
    ids = create_rows(env, model, as_vals_list(vals_list))
    env.effect(model, "create", ids, vals_list)
    return created_result(vals_list, ids)


@method(None, "write", on_records=True)
def write(env: Env, model: str, ids: list[int], vals: Any) -> bool:
    write_rows(env, model, ids, vals)
    env.effect(model, "write", ids, vals)
    return True


@method(None, "unlink", on_records=True)
def unlink(env: Env, model: str, ids: list[int]) -> bool:
    browse_rows(env, model, ids)  # deleting a missing record is a MissingError
    unlink_rows(env, model, ids)
    env.effect(model, "unlink", ids, None)
    return True


@method(None, "exists", on_records=True)
def exists(env: Env, model: str, ids: list[int]) -> list[int]:
    return [i for i in ids if i in env.table(model)]


@method(None, "fields_get")
def fields_get(env: Env, model: str, allfields: Any = None, attributes: Any = None) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = {}
    for name, f in env.spec(model).fields.items():
        if allfields and name not in allfields:
            continue
        desc: dict[str, Any] = {
            "type": f.type,
            "string": f.string,
            "required": f.required,
            "readonly": f.readonly or f.computed,
            "store": not f.computed,
            "name": name,
        }
        if f.relation:
            desc["relation"] = f.relation
        if f.inverse:
            desc["relation_field"] = f.inverse
        if f.selection is not None:
            desc["selection"] = [list(item) for item in f.selection]
        result[name] = {k: v for k, v in desc.items() if not attributes or k in attributes}
    return result


@method(None, "default_get")
def default_get(env: Env, model: str, fields_list: Any) -> Row:
    return default_values(env, model, list(fields_list or []))


NAME_SEARCH_FIELDS = {"product.product": ("default_code", "name")}


@method(None, "name_search")
def name_search(
    env: Env,
    model: str,
    name: str = "",
    args: Any = None,
    operator: str = "ilike",
    limit: int = 100,
    domain: Any = None,
) -> list[list[Any]]:
    # `args` is the <= 17 keyword, `domain` the 18+ one; both restrict the search.
    rows = search_rows(env, model, list(domain or args or []), 0, None, None)
    if name:
        names = NAME_SEARCH_FIELDS.get(model, (env.spec(model).rec_name,))
        rows = [r for r in rows if any(_name_matches(env, model, r, n, operator, name) for n in names)]
    rows = rows[:limit] if limit else rows
    return [[r["id"], display_name(env, model, r["id"])] for r in rows]


def _name_matches(env: Env, model: str, row: Row, field: str, operator: str, name: str) -> bool:
    ftype = env.spec(model).fields[field].type

    def lookup(path: str) -> list[LeafValue]:
        return [LeafValue(row.get(path, False), ftype)]

    return matches([(field, operator, name)], lookup)


@method(None, "name_get", on_records=True, versions=(16, 16))
def name_get(env: Env, model: str, ids: list[int]) -> list[list[Any]]:
    browse_rows(env, model, ids)
    return [[i, display_name(env, model, i)] for i in normalize_ids(ids)]
