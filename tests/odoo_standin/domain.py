"""Odoo domain evaluation over in-memory rows.

Supports Polish-notation ``'&'``, ``'|'``, ``'!'`` with implicit AND of the remaining terms,
``TRUE_LEAF``/``FALSE_LEAF`` (``(1, '=', 1)``/``(0, '=', 1)``) and the operators
``= != <> =? in not in like not like ilike not ilike =like =ilike < <= > >=``.
Dotted paths (``product_id.default_code``) are resolved by the caller's ``Lookup``; a path that
fans out through a x2many matches if *any* value matches (negative operators negate that).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

NUMERIC = frozenset({"integer", "float", "monetary"})
NEGATIONS = {"!=": "=", "not in": "in", "not like": "like", "not ilike": "ilike"}
POSITIVE = frozenset({"=", "=?", "in", "like", "ilike", "=like", "=ilike", "<", "<=", ">", ">="})
OPERATORS = POSITIVE | set(NEGATIONS) | {"<>"}


class LeafValue(NamedTuple):
    """One value a path resolves to: stored value, field type, and for many2one the target's
    display name (Odoo lets a many2one be compared with a string through name_search)."""

    value: Any
    ftype: str
    display: str | None = None


# Resolve a (possibly dotted) field path of the current row to its candidate values.
Lookup = Callable[[str], list[LeafValue]]


def is_empty(value: Any, ftype: str) -> bool:
    """SQL NULL as Odoo sees it: numbers are stored (0 is not NULL), booleans are NULL-ish when
    False (Odoo turns ``active = False`` into ``active IS NULL OR active = false``)."""
    if value is None:
        return True
    if ftype in NUMERIC:
        return False
    if ftype in ("one2many", "many2many"):
        return not value
    return value is False or value == ""


def like_regex(pattern: str, ignore_case: bool) -> re.Pattern[str]:
    """Translate a SQL LIKE pattern (``%``, ``_``, backslash escapes) to an anchored regex."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(re.escape(char))
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        else:
            out.append(re.escape(char))
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def like_prefix(pattern: str) -> str:
    """The literal text a LIKE ``pattern`` starts with (up to its first unescaped wildcard)."""
    out: list[str] = []
    escaped = False
    for char in pattern:
        if escaped:
            out.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in "%_":
            break
        else:
            out.append(char)
    return "".join(out)


def _compare(left: Any, operator: str, right: Any) -> bool:
    try:
        if operator == "<":
            return bool(left < right)
        if operator == "<=":
            return bool(left <= right)
        if operator == ">":
            return bool(left > right)
        return bool(left >= right)
    except TypeError:
        return False  # SQL compares NULL/mismatched types as unknown -> not selected


def _equals(leaf: LeafValue, right: Any) -> bool:
    value, ftype, display = leaf
    if right is False or right is None:
        return is_empty(value, ftype)
    if ftype in ("one2many", "many2many"):
        return right in (value or [])
    if ftype == "many2one" and isinstance(right, str):
        return display == right
    if ftype == "boolean":
        return bool(value) == bool(right)
    return bool(value == right) and not (value is False and ftype not in NUMERIC)


def _in(leaf: LeafValue, right: Any) -> bool:
    values = list(right) if isinstance(right, list | tuple | set) else [right]
    if any(v is False or v is None for v in values) and is_empty(leaf.value, leaf.ftype):
        return True
    if leaf.ftype in ("one2many", "many2many"):
        return bool(set(leaf.value or []) & {v for v in values if v is not False})
    return any(_equals(leaf, v) for v in values if v is not False and v is not None)


def _positive(leaf: LeafValue, operator: str, right: Any) -> bool:
    if operator == "=":
        return _equals(leaf, right)
    if operator == "=?":
        return True if right is None or right is False else _equals(leaf, right)
    if operator == "in":
        return _in(leaf, right)
    if operator in ("like", "ilike", "=like", "=ilike"):
        if is_empty(leaf.value, leaf.ftype) or leaf.ftype in ("one2many", "many2many"):
            return False
        text = leaf.display if leaf.ftype == "many2one" else str(leaf.value)
        pattern = str(right) if operator.startswith("=") else f"%{right}%"
        return like_regex(pattern, "ilike" in operator).fullmatch(text or "") is not None
    if is_empty(leaf.value, leaf.ftype):
        return False
    return _compare(leaf.value, operator, right)


def eval_leaf(leaf: Sequence[Any], lookup: Lookup) -> bool:
    path, operator, right = leaf
    if not isinstance(path, str):
        # TRUE_LEAF / FALSE_LEAF as Odoo writes them: (1, '=', 1) and (0, '=', 1)
        return bool(operator == "=" and path == right)
    if not isinstance(operator, str) or operator.lower() not in OPERATORS:
        raise ValueError(f"Invalid leaf {list(leaf)!r}")
    operator = "!=" if operator == "<>" else operator.lower()
    candidates = lookup(path)
    positive = NEGATIONS.get(operator, operator)
    hit = any(_positive(c, positive, right) for c in candidates)
    return not hit if operator in NEGATIONS else hit


def matches(domain: Sequence[Any], lookup: Lookup) -> bool:
    """Evaluate ``domain`` for one row; raises ``ValueError`` on a malformed domain."""
    if not isinstance(domain, list | tuple):
        raise ValueError(f"Invalid domain {domain!r}")
    stack: list[bool] = []
    # Reverse walk: each operator pops its operands, whatever is left is implicitly ANDed.
    for term in reversed(domain):
        if isinstance(term, str):
            if term not in ("&", "|", "!"):
                raise ValueError(f"Invalid domain term {term!r}")
            arity = 1 if term == "!" else 2
            if len(stack) < arity:
                raise ValueError(f"Invalid domain {list(domain)!r}: missing operand for {term!r}")
            if term == "!":
                stack.append(not stack.pop())
            else:
                first, second = stack.pop(), stack.pop()
                stack.append(first and second if term == "&" else first or second)
        elif isinstance(term, list | tuple) and len(term) == 3:
            stack.append(eval_leaf(term, lookup))
        else:
            raise ValueError(f"Invalid domain term {term!r}")
    return all(stack)


def mentions(domain: Sequence[Any], field: str) -> bool:
    """True if a leaf of ``domain`` is on ``field`` (Odoo then skips the implicit active test)."""
    return any(isinstance(t, list | tuple) and len(t) == 3 and t[0] == field for t in domain)
