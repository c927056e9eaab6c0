"""What a task kind is: a payload model plus the two Odoo steps that apply it exactly once.

A kind never talks to the network itself: it is handed an :class:`OdooCall` (an
``execute_kw``-shaped adapter), so it runs the same on odoorpc, JSON-2 or a test double.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel

from shared.errors import PermanentTaskError

__all__ = ["OdooCall", "TaskKind", "created_ids", "resolve_products", "resource_key", "task_reference"]


class OdooCall(Protocol):
    """``execute_kw`` as on JSON-RPC, in the one shape JSON-2 can say as well: ``args`` is
    ``[]``, or ``[ids]`` for a method on records; every other argument is named in ``kwargs``
    (``domain``, ``fields``, ``vals_list``...), and ``kwargs["context"]`` is the context. Each
    adapter sends it the way its API expects (``workers/odoo_client.py``, ``workers/odoo_json2.py``)."""

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any: ...


@dataclass(frozen=True)
class TaskKind:
    """``find_effect`` looks in Odoo for what this task already did (None = nothing);
    ``apply`` does it in as few Odoo transactions as Odoo allows, proves its own effect
    under its own reference, and returns the result. ``resource_keys`` names the existing
    Odoo records the payload changes (computed at acceptance, from the normalised payload):
    tasks sharing a key take effect one at a time, in acceptance order."""

    name: str
    payload_model: type[BaseModel]
    find_effect: Callable[[OdooCall, str, dict[str, Any]], dict[str, Any] | None]
    apply: Callable[[OdooCall, str, dict[str, Any]], dict[str, Any]]
    resource_keys: Callable[[dict[str, Any]], tuple[str, ...]] = lambda payload: ()


def task_reference(task_id: str) -> str:
    """The string that carries the task into Odoo (``client_order_ref``, move names)."""
    return f"GW-{task_id}"


def resource_key(model: str, *parts: str) -> str:
    """``stock.quant:WH/Stock|DEMO-001``: readable by an operator, one per Odoo record."""
    return f"{model}:{'|'.join(parts)}"


def created_ids(value: Any) -> list[int]:
    """``create`` with a list of values answers a list of ids on both APIs; an int (JSON-RPC's
    answer to a single dict) is read as a list of one."""
    return [int(i) for i in value] if isinstance(value, list) else [int(value)]


def resolve_products(odoo: OdooCall, codes: Iterable[str]) -> dict[str, int]:
    """Map internal references (default_code) to product ids; unknown ones fail the task."""
    wanted = sorted(set(codes))
    rows = odoo.execute_kw(
        "product.product",
        "search_read",
        [],
        {"domain": [["default_code", "in", wanted]], "fields": ["id", "default_code"]},
    )
    found = {row["default_code"]: row["id"] for row in rows}
    missing = [code for code in wanted if code not in found]
    if missing:
        raise PermanentTaskError(
            f"Unknown product reference(s) in Odoo: {', '.join(missing)}. "
            "Check the internal reference (default_code) and submit a new task.",
            details={"products": missing},
            code="unknown_product",
        )
    return found
