"""``inventory.adjust``: set counted (absolute) quantities of products at one location.

Odoo: ``stock.quant`` created in inventory mode (an upsert of the counted quantity), then
``action_apply_inventory``, whose return value is checked: a dict is the conflict wizard
and means nothing was applied. The stock moves it creates are named after the task
reference (``inventory_name``), which is how a retry finds out the task already ran.

The two calls are two Odoo transactions, so two counts of the same quant must never run
between each other (the second count would be applied under the first one's name): each
(location, product) line is a resource key, and the workers run tasks sharing one in
acceptance order, one at a time. After applying, the task proves its own effect: every
line either has a move under this task's reference, or is a no-op because the count
equals the stock (listed in ``unchanged_products``; ``"changed": false`` when no line moved
stock; Odoo 16+ still records a done move of quantity 0 under the count's name); and the
quant now holds the counted quantity. Anything else is an anomaly, never reported as success.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import PermanentTaskError, RetryableTaskError
from shared.kinds.base import OdooCall, TaskKind, created_ids, resolve_products, resource_key

__all__ = ["INVENTORY_ADJUST", "QUANTITY_TOLERANCE", "InventoryAdjust", "InventoryLine", "resource_keys"]

#: Half a unit of Odoo's default 'Product Unit of Measure' precision (2 digits): Odoo
#: rounds stored quantities to it, so a count of 12.345 reads back as 12.35.
QUANTITY_TOLERANCE = 0.005 + 1e-9


class InventoryLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=64, description="internal reference")
    quantity: float = Field(ge=0, le=1e9, description="counted quantity (absolute)")


class InventoryAdjust(BaseModel):
    model_config = ConfigDict(extra="forbid")

    location: str = Field(min_length=1, max_length=256, description="complete name, e.g. WH/Stock")
    lines: list[InventoryLine] = Field(min_length=1, max_length=500)

    @field_validator("lines")
    @classmethod
    def _one_line_per_product(cls, lines: list[InventoryLine]) -> list[InventoryLine]:
        codes = [line.product for line in lines]
        if len(set(codes)) != len(codes):
            raise ValueError("each product may appear only once in a count")
        return lines


def resource_keys(payload: dict[str, Any]) -> tuple[str, ...]:
    """One key per counted quant: (location, product)."""
    count = InventoryAdjust.model_validate(payload)
    return tuple(sorted(resource_key("stock.quant", count.location, line.product) for line in count.lines))


def _many2one_id(value: Any) -> int:
    # search_read answers a many2one as [id, display name] on both APIs; a bare id is accepted too.
    return int(value[0] if isinstance(value, list | tuple) else value)


def _find_moves(odoo: OdooCall, ref: str) -> list[dict[str, Any]]:
    # Odoo 17+ appends " (<user>)" to the move name, hence the prefix match.
    domain = [["is_inventory", "=", True], ["name", "=like", f"{ref}%"]]
    rows: list[dict[str, Any]] = odoo.execute_kw(
        "stock.move",
        "search_read",
        [],
        {"domain": domain, "fields": ["id", "product_id", "product_uom_qty"], "order": "id"},
    )
    return rows


def _moved_products(moves: list[dict[str, Any]]) -> set[int]:
    # Odoo (16+) leaves a done move of quantity 0 for a count equal to the stock.
    return {_many2one_id(m["product_id"]) for m in moves if float(m.get("product_uom_qty") or 0) > QUANTITY_TOLERANCE}


def find_effect(odoo: OdooCall, ref: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    moves = _find_moves(odoo, ref)
    if not moves:
        return None
    count = InventoryAdjust.model_validate(payload)
    moved = _moved_products(moves)
    products = resolve_products(odoo, (line.product for line in count.lines)) if moved else {}
    unchanged = sorted(line.product for line in count.lines if products.get(line.product) not in moved)
    return {"move_ids": [m["id"] for m in moves], "changed": bool(moved), "unchanged_products": unchanged}


def _resolve_location(odoo: OdooCall, name: str) -> int:
    rows = odoo.execute_kw(
        "stock.location",
        "search_read",
        [],
        {
            "domain": [["complete_name", "=", name], ["usage", "in", ["internal", "transit"]]],
            "fields": ["id"],
            "limit": 2,
        },
    )
    if len(rows) != 1:
        raise PermanentTaskError(
            f"Unknown stock location '{name}' in Odoo (expected the complete name of an "
            "internal location, such as 'WH/Stock'). Fix the location and submit a new task.",
            details={"location": name},
            code="unknown_location",
        )
    location_id: int = rows[0]["id"]
    return location_id


def apply(odoo: OdooCall, ref: str, payload: dict[str, Any]) -> dict[str, Any]:
    count = InventoryAdjust.model_validate(payload)
    location_id = _resolve_location(odoo, count.location)
    products = resolve_products(odoo, (line.product for line in count.lines))
    context = {"inventory_mode": True, "inventory_name": ref}
    # Creating in inventory mode upserts the quant's counted quantity, so running this
    # step twice leaves the same count: it is safe to repeat before the apply below.
    vals_list = [
        {"product_id": products[line.product], "location_id": location_id, "inventory_quantity": line.quantity}
        for line in count.lines
    ]
    quant_ids = created_ids(odoo.execute_kw("stock.quant", "create", [], {"vals_list": vals_list, "context": context}))
    outcome = odoo.execute_kw("stock.quant", "action_apply_inventory", [quant_ids], {"context": context})
    if isinstance(outcome, dict):
        wizard = outcome.get("res_model", "a wizard")
        raise PermanentTaskError(
            f"Odoo did not apply the count: it answered with {wizard}, which means the "
            "stock changed since it was counted. Count again and submit a new task.",
            details={"odoo_action": wizard},
            code="inventory_conflict",
        )
    return _prove(odoo, ref, count, products, quant_ids)


def _prove(
    odoo: OdooCall, ref: str, count: InventoryAdjust, products: dict[str, int], quant_ids: list[int]
) -> dict[str, Any]:
    """This task's own effect, read back from Odoo: moves under its reference, and every
    counted quant holding its counted quantity."""
    moves = _find_moves(odoo, ref)
    moved = _moved_products(moves)
    rows = odoo.execute_kw(
        "stock.quant",
        "search_read",
        [],
        {"domain": [["id", "in", quant_ids]], "fields": ["id", "product_id", "quantity"]},
    )
    stock = {_many2one_id(row["product_id"]): float(row["quantity"]) for row in rows}
    wrong = {
        line.product: stock.get(products[line.product])
        for line in count.lines
        if stock.get(products[line.product]) is None
        or abs(stock[products[line.product]] - line.quantity) > QUANTITY_TOLERANCE
    }
    if wrong:
        detail = ", ".join(
            f"{line.product}: counted {line.quantity}, stock {wrong[line.product]}"
            for line in count.lines
            if line.product in wrong
        )
        if not moves:
            # Nothing happened under our name: setting the count again is safe.
            raise RetryableTaskError(
                f"Odoo did not hold the counted quantities after applying ({detail}); retrying.",
                details={"products": sorted(wrong)},
                code="effect_not_found",
            )
        raise PermanentTaskError(
            f"Odoo applied this count, but the stock does not match it ({detail}): another change to these "
            f"products interfered in Odoo. Check the stock moves named {ref} and count again.",
            details={"products": sorted(wrong), "move_ids": [m["id"] for m in moves]},
            code="inventory_interference",
        )
    unchanged = sorted(line.product for line in count.lines if products[line.product] not in moved)
    return {
        "move_ids": [m["id"] for m in moves],
        "quant_ids": sorted(quant_ids),
        # A count equal to the stock moves nothing in Odoo: a documented no-op, not a guess.
        "changed": bool(moved),
        "unchanged_products": unchanged,
    }


INVENTORY_ADJUST = TaskKind("inventory.adjust", InventoryAdjust, find_effect, apply, resource_keys)
