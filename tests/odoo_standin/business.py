"""Business behaviour of the modelled apps: users, products, stock inventory and sales.

Follows Odoo 16-19 (``stock/models/stock_quant.py``, ``sale/models/sale_order.py``) closely
enough for the gateway's flows; simplifications are noted where they are made.
"""

from __future__ import annotations

from typing import Any

from .methods import as_vals_list, created_result
from .models import (
    COMPUTES,
    PREPARE,
    RECOMPUTE,
    Env,
    method,
    now_str,
    user_error,
    validation_error,
)
from .orm import browse_rows, create_rows, display_name, write_rows
from .schema import INVENTORY_LOCATION_ID, SUPERUSER_ID, Row

# stock.quant._get_inventory_fields_create() + _get_inventory_fields_write()
INVENTORY_FIELDS = frozenset(
    {
        "product_id",
        "location_id",
        "lot_id",
        "package_id",
        "owner_id",
        "company_id",
        "inventory_quantity",
        "inventory_quantity_auto_apply",
        "inventory_diff_quantity",
        "inventory_date",
        "user_id",
        "inventory_quantity_set",
    }
)
QUANT_KEY = ("product_id", "location_id", "lot_id", "package_id", "owner_id")


# --------------------------------------------------------------------------- computed fields


def _product_compute(env: Env, row: Row) -> Row:
    internal = {i for i, loc in env.table("stock.location").items() if loc["usage"] == "internal"}
    quants = env.table("stock.quant")
    qty = sum(
        quants[i]["quantity"]
        for i in env.db.ids_equal("stock.quant", "product_id", row["id"])
        if quants[i]["location_id"] in internal
    )
    code = row.get("default_code")
    return {"display_name": f"[{code}] {row['name']}" if code else row["name"], "qty_available": qty}


def _quant_compute(env: Env, row: Row) -> Row:
    return {
        "display_name": display_name(env, "stock.location", row["location_id"]),
        "inventory_quantity_auto_apply": row["quantity"],
    }


def _order_compute(env: Env, row: Row) -> Row:
    table = env.table("sale.order.line")
    lines = [table[i] for i in env.db.ids_equal("sale.order.line", "order_id", row["id"])]
    return {"amount_total": sum(r["product_uom_qty"] * r["price_unit"] for r in lines)}


def _line_compute(env: Env, row: Row) -> Row:
    order = env.table("sale.order").get(row["order_id"])
    prefix = f"{order['name']} - " if order else ""
    return {
        "price_subtotal": row["product_uom_qty"] * row["price_unit"],
        "display_name": f"{prefix}{row['name']}",
    }


def _location_recompute(env: Env, row: Row) -> None:
    # stock.location._compute_complete_name: views don't prefix their parent's name.
    parent = env.table("stock.location").get(row["location_id"]) if row["location_id"] else None
    row["complete_name"] = (
        f"{parent['complete_name']}/{row['name']}" if parent and row["usage"] != "view" else row["name"]
    )


def _quant_recompute(env: Env, row: Row) -> None:
    row["inventory_diff_quantity"] = (
        row["inventory_quantity"] - row["quantity"] if row["inventory_quantity_set"] else 0.0
    )


def _move_recompute(env: Env, row: Row) -> None:
    row["reference"] = row["name"]  # no picking: the reference is the move's own name


def _prepare_order(env: Env, vals: Row) -> Row:
    # sale.order.create: name "New" is replaced by the ir.sequence `sale.order` (S00001...).
    if vals.get("name", "New") in ("New", False, None, ""):
        vals["name"] = f"S{env.db.next_sequence('sale.order'):05d}"
    vals.setdefault("date_order", now_str())
    vals.setdefault("user_id", env.uid)
    return vals


def _prepare_line(env: Env, vals: Row) -> Row:
    product = env.table("product.product").get(vals.get("product_id") or 0)
    if product:
        vals.setdefault("name", display_name(env, "product.product", product["id"]))
        vals.setdefault("price_unit", product["list_price"])
    return vals


COMPUTES.update(
    {
        "product.product": _product_compute,
        "stock.quant": _quant_compute,
        "sale.order": _order_compute,
        "sale.order.line": _line_compute,
    }
)
RECOMPUTE.update(
    {"stock.location": _location_recompute, "stock.quant": _quant_recompute, "stock.move": _move_recompute}
)
PREPARE.update({"sale.order": _prepare_order, "sale.order.line": _prepare_line})


# --------------------------------------------------------------------------- res.users


@method("res.users", "context_get")
def context_get(env: Env, model: str) -> dict[str, Any]:
    return {"lang": "en_US", "tz": "Europe/Brussels", "uid": env.uid}


# --------------------------------------------------------------------------- stock.quant


def is_storable(product: Row) -> bool:
    return bool(product.get("is_storable")) if "is_storable" in product else product["type"] == "product"


def _check_quant(env: Env, row: Row, inventory_mode: bool) -> None:
    """stock.quant constraints (check_product_id, check_location_id) plus the inventory-mode
    restriction to internal/transit locations."""
    if not is_storable(env.table("product.product")[row["product_id"]]):
        raise validation_error("Quants cannot be created for consumables or services.")
    location = env.table("stock.location")[row["location_id"]]
    if location["usage"] == "view":
        raise validation_error(
            "You cannot take products from or deliver products to a location of type "
            f'"view" ({location["complete_name"]}).'
        )
    if inventory_mode and location["usage"] not in ("internal", "transit"):
        raise user_error(
            f"Inventory adjustments can only be made in internal or transit locations ({location['complete_name']})."
        )


def find_quant(env: Env, key: dict[str, Any]) -> Row | None:
    """``_gather(..., strict=True)``: same product/location/lot/package/owner."""
    quants = env.table("stock.quant")
    for quant_id in env.db.ids_equal("stock.quant", "product_id", key.get("product_id") or False):
        quant = quants[quant_id]
        if all(quant.get(k) == (key.get(k) or False) for k in QUANT_KEY):
            return quant
    return None


def _inventory_upsert(env: Env, vals: dict[str, Any]) -> int:
    if any(name not in INVENTORY_FIELDS for name in vals):
        raise user_error("Quant's creation is restricted, you can't do this operation.")
    auto_apply = "inventory_quantity_auto_apply" in vals
    counted = vals.get("inventory_quantity_auto_apply" if auto_apply else "inventory_quantity")
    plain = {k: v for k, v in vals.items() if k not in ("inventory_quantity", "inventory_quantity_auto_apply")}
    quant = find_quant(env, plain)
    if quant is None:
        [quant_id] = create_rows(env, "stock.quant", [plain])
        quant = env.table("stock.quant")[quant_id]
    _check_quant(env, quant, inventory_mode=True)
    write_rows(
        env,
        "stock.quant",
        [quant["id"]],
        {
            "inventory_quantity": counted or 0.0,
            "inventory_quantity_set": True,
            "user_id": vals.get("user_id", env.uid),
            "inventory_date": now_str()[:10],
        },
    )
    if auto_apply:  # the inverse of inventory_quantity_auto_apply applies at once
        apply_inventory(env, [quant])
    return int(quant["id"])


@method("stock.quant", "create")
def quant_create(env: Env, model: str, vals_list: Any) -> Any:
    ids: list[int] = []
    for vals in as_vals_list(vals_list):
        counting = isinstance(vals, dict) and ("inventory_quantity" in vals or "inventory_quantity_auto_apply" in vals)
        if env.context.get("inventory_mode") and counting:
            ids.append(_inventory_upsert(env, vals))
        else:  # outside inventory mode Odoo really inserts another quant row
            [quant_id] = create_rows(env, model, [vals])
            _check_quant(env, env.table(model)[quant_id], inventory_mode=False)
            ids.append(quant_id)
    env.effect(model, "create", ids, vals_list)
    return created_result(vals_list, ids)


@method("stock.quant", "write", on_records=True)
def quant_write(env: Env, model: str, ids: list[int], vals: Any) -> bool:
    if (
        env.context.get("inventory_mode")
        and isinstance(vals, dict)
        and any(name not in INVENTORY_FIELDS for name in vals)
    ):
        raise user_error("Quant's editing is restricted, you can't do this operation.")
    if isinstance(vals, dict) and "inventory_quantity" in vals:
        vals = {"inventory_quantity_set": True, **vals}  # setting a count marks it as set
    write_rows(env, model, ids, vals)
    env.effect(model, "write", ids, vals)
    return True


def apply_inventory(env: Env, quants: list[Row]) -> list[int]:
    """``_apply_inventory``: one done inventory move per quant, a zero-quantity one included.

    As in Odoo (``stock/models/stock_quant.py``): the move goes in the direction of
    ``inventory_diff_quantity`` (the ``else`` branch, location -> inventory loss, also takes a
    zero difference); ``stock.move._action_done`` cancels empty moves except inventory ones
    (``quantity <= 0 and not move.is_inventory``), so a count equal to the stock still leaves
    a done move of quantity 0 under the count's name ("Product Quantity Confirmed" without an
    ``inventory_name``); the name gets `` (<quant's user>)`` in 17+ when the quant has a user
    other than the superuser (``_get_inventory_move_values``); then the count is cleared
    (``inventory_quantity`` 0, not set, no user). 19.0 first marks every quant's count as set
    ("Consider the inventory_quantity as set"), so applying a quant whose count was cleared
    applies a count of 0; 16.0-18.0 apply the stored difference, which clearing made 0.
    """
    if env.major >= 19:
        for quant in quants:
            quant["inventory_quantity_set"] = True
            _quant_recompute(env, quant)
    done_field = "quantity" if env.major >= 17 else "quantity_done"
    move_ids: list[int] = []
    for quant in quants:
        diff = quant["inventory_diff_quantity"]
        qty = abs(diff)
        here = quant["location_id"]
        src, dst = (INVENTORY_LOCATION_ID, here) if diff > 0 else (here, INVENTORY_LOCATION_ID)
        name = env.context.get("inventory_name") or (
            "Product Quantity Updated" if qty > 1e-9 else "Product Quantity Confirmed"
        )
        user = quant["user_id"]
        if env.major >= 17 and user and user != SUPERUSER_ID:
            name += f" ({display_name(env, 'res.users', user)})"
        move_ids += create_rows(
            env,
            "stock.move",
            [
                {
                    "name": name,
                    "product_id": quant["product_id"],
                    "product_uom_qty": qty,
                    done_field: qty,
                    "location_id": src,
                    "location_dest_id": dst,
                    "state": "done",
                    "is_inventory": True,
                    "date": now_str(),
                    **({"picked": True} if env.major >= 17 else {}),
                }
            ],
        )
        if qty > 1e-9:
            quant["quantity"] += diff
            _bump_counterpart(env, quant["product_id"], -diff)
        quant.update({"inventory_quantity": 0.0, "inventory_quantity_set": False, "user_id": False})
        _quant_recompute(env, quant)
    return move_ids


def _bump_counterpart(env: Env, product_id: int, delta: float) -> None:
    # The move's other side: Odoo keeps (negative) quants in the inventory-loss location too.
    key = {"product_id": product_id, "location_id": INVENTORY_LOCATION_ID}
    quant = find_quant(env, key) or env.db.insert("stock.quant", dict(key))
    quant["quantity"] += delta


@method("stock.quant", "action_apply_inventory", on_records=True)
def action_apply_inventory(env: Env, model: str, ids: list[int]) -> Any:
    quants = browse_rows(env, model, ids)
    outdated = [q["id"] for q in quants if q["is_outdated"]]
    if outdated:  # nothing is applied: the user must resolve the conflict first
        return {
            "name": "Conflict in Inventory Adjustment",
            "type": "ir.actions.act_window",
            "view_mode": "form",
            "views": [[False, "form"]],
            "res_model": "stock.inventory.conflict",
            "target": "new",
            "context": {**env.context, "default_quant_ids": list(ids), "default_quant_to_fix_ids": outdated},
        }
    move_ids = apply_inventory(env, quants)
    env.effect(model, "action_apply_inventory", ids, {"move_ids": move_ids})
    return None


def mark_outdated(env: Env, product_code: str, location_name: str, outdated: bool) -> int:
    """Test hook: flag the quant (created empty if needed) as counted-while-moved."""
    product = next((p for p in env.table("product.product").values() if p["default_code"] == product_code), None)
    location = next(
        (loc for loc in env.table("stock.location").values() if loc["complete_name"] == location_name), None
    )
    if product is None or location is None:
        raise KeyError(f"no product {product_code!r} or location {location_name!r}")
    key = {"product_id": product["id"], "location_id": location["id"]}
    quant = find_quant(env, key) or env.db.insert("stock.quant", dict(key))
    quant["is_outdated"] = outdated
    return int(quant["id"])


# --------------------------------------------------------------------------- sale.order


@method("sale.order", "action_confirm", on_records=True)
def action_confirm(env: Env, model: str, ids: list[int]) -> bool:
    orders = browse_rows(env, model, ids)
    blocked = [o["name"] for o in orders if o["state"] not in ("draft", "sent")]
    if blocked:
        raise user_error("The following orders are not in a state requiring confirmation: " + ", ".join(blocked))
    for order in orders:
        order.update({"state": "sale", "date_order": now_str()})
    env.effect(model, "action_confirm", ids, None)
    return True
