"""``sale.order.create``: a quotation for a customer, with lines of product + quantity.

The task reference travels in ``client_order_ref``; a retry searches it before creating.

No resource keys: the task creates a new quotation and changes no existing record (stock
is only reserved when an order is confirmed, which this kind does not do), so two orders
for the same customer or product may safely run side by side. A kind that confirms orders
would declare the (warehouse, product) quants it reserves.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import AmbiguousTaskError, PermanentTaskError
from shared.kinds.base import OdooCall, TaskKind, created_ids, resolve_products

__all__ = ["SALE_ORDER_CREATE", "SaleLine", "SaleOrderCreate"]


class SaleLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product: str = Field(min_length=1, max_length=64, description="internal reference")
    quantity: float = Field(gt=0, le=1e9)


class SaleOrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer: str = Field(min_length=1, max_length=256, description="the customer's name")
    lines: list[SaleLine] = Field(min_length=1, max_length=500)


def find_effect(odoo: OdooCall, ref: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    rows = odoo.execute_kw(
        "sale.order",
        "search_read",
        [],
        {"domain": [["client_order_ref", "=", ref]], "fields": ["id", "name"], "order": "id"},
    )
    if not rows:
        return None
    return {"sale_order_id": rows[0]["id"], "name": rows[0]["name"]}


def _resolve_customer(odoo: OdooCall, name: str) -> int:
    # search_read, not search: search's first parameter is named ``args`` up to Odoo 16 and
    # ``domain`` from 17, and JSON-2 passes arguments by name only.
    rows = odoo.execute_kw(
        "res.partner", "search_read", [], {"domain": [["name", "=", name]], "fields": ["id"], "limit": 2}
    )
    ids = [int(row["id"]) for row in rows]
    if len(ids) != 1:
        problem = "No customer" if not ids else "More than one customer"
        raise PermanentTaskError(
            f"{problem} named '{name}' in Odoo. Use the customer's exact name and submit a new task.",
            details={"customer": name},
            code="unknown_customer",
        )
    return ids[0]


def apply(odoo: OdooCall, ref: str, payload: dict[str, Any]) -> dict[str, Any]:
    order = SaleOrderCreate.model_validate(payload)
    partner_id = _resolve_customer(odoo, order.customer)
    products = resolve_products(odoo, (line.product for line in order.lines))
    values = {
        "partner_id": partner_id,
        "client_order_ref": ref,
        "order_line": [
            [0, 0, {"product_id": products[line.product], "product_uom_qty": line.quantity}] for line in order.lines
        ],
    }
    created = created_ids(odoo.execute_kw("sale.order", "create", [], {"vals_list": [values]}))
    # Proof, not a guess: the order must be found under this task's own reference.
    found = find_effect(odoo, ref, payload)
    if found is None or [found["sale_order_id"]] != created:
        raise AmbiguousTaskError(
            f"Odoo created sale order(s) {created}, but it is not found under {ref}; looking again before retrying.",
            code="effect_not_found",
        )
    return found


SALE_ORDER_CREATE = TaskKind("sale.order.create", SaleOrderCreate, find_effect, apply)
