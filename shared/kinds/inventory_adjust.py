"""``inventory.adjust``: set counted (absolute) quantities of products at one location.

Odoo: ``stock.quant`` created in inventory mode (an upsert of the counted quantity), then
``action_apply_inventory``, whose return value is checked: a dict is the conflict wizard
and means nothing was applied. The stock moves it creates are named after the task
reference (``inventory_name``), which is how a retry finds out the task already ran.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.errors import PermanentTaskError
from shared.kinds.base import OdooCall, TaskKind, resolve_products

__all__ = ["INVENTORY_ADJUST", "InventoryAdjust", "InventoryLine"]


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


def _find_moves(odoo: OdooCall, ref: str) -> list[int]:
    # Odoo 17+ appends " (<user>)" to the move name, hence the prefix match.
    domain = [["is_inventory", "=", True], ["name", "=like", f"{ref}%"]]
    ids: list[int] = odoo.execute_kw("stock.move", "search", [domain], {"order": "id"})
    return ids


def find_effect(odoo: OdooCall, ref: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    move_ids = _find_moves(odoo, ref)
    return {"move_ids": move_ids} if move_ids else None


def _resolve_location(odoo: OdooCall, name: str) -> int:
    rows = odoo.execute_kw(
        "stock.location",
        "search_read",
        [[["complete_name", "=", name], ["usage", "in", ["internal", "transit"]]]],
        {"fields": ["id"], "limit": 2},
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
    quant_ids = odoo.execute_kw(
        "stock.quant",
        "create",
        [
            [
                {
                    "product_id": products[line.product],
                    "location_id": location_id,
                    "inventory_quantity": line.quantity,
                }
                for line in count.lines
            ]
        ],
        {"context": context},
    )
    quant_ids = quant_ids if isinstance(quant_ids, list) else [quant_ids]
    outcome = odoo.execute_kw("stock.quant", "action_apply_inventory", [quant_ids], {"context": context})
    if isinstance(outcome, dict):
        wizard = outcome.get("res_model", "a wizard")
        raise PermanentTaskError(
            f"Odoo did not apply the count: it answered with {wizard}, which means the "
            "stock changed since it was counted. Count again and submit a new task.",
            details={"odoo_action": wizard},
            code="inventory_conflict",
        )
    return {"move_ids": _find_moves(odoo, ref), "quant_ids": sorted(quant_ids)}


INVENTORY_ADJUST = TaskKind("inventory.adjust", InventoryAdjust, find_effect, apply)
