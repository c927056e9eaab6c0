"""Model schemas (fields as Odoo's ``fields_get`` describes them) and the demo data.

Only what the gateway flows touch is modelled. Field types and names follow Odoo 16-19; the
version-dependent bits (storable products, move quantities) are switched on ``major``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Field:
    type: str
    string: str
    relation: str | None = None
    required: bool = False
    readonly: bool = False
    default: Any = None  # None = no default (Odoo's default_get omits the field)
    selection: tuple[tuple[str, str], ...] | None = None
    inverse: str | None = None  # one2many: the many2one on the comodel pointing back
    computed: bool = False  # not stored; filled in by the model's compute hook on read


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    fields: dict[str, Field]
    order: tuple[tuple[str, bool], ...] = (("id", False),)  # (field, descending)
    rec_name: str = "name"


def _f(ftype: str, string: str, **kw: Any) -> Field:
    return Field(type=ftype, string=string, **kw)


def _m2o(string: str, relation: str, **kw: Any) -> Field:
    return Field(type="many2one", string=string, relation=relation, **kw)


def _common() -> dict[str, Field]:
    return {
        "id": _f("integer", "ID", readonly=True),
        "display_name": _f("char", "Display Name", readonly=True, computed=True),
    }


PRODUCT_TYPES_OLD = (("consu", "Consumable"), ("service", "Service"), ("product", "Storable Product"))
PRODUCT_TYPES_NEW = (("consu", "Goods"), ("service", "Service"), ("combo", "Combo"))
LOCATION_USAGES = tuple((u, u.title()) for u in ("supplier", "view", "internal", "customer", "inventory", "transit"))
MOVE_STATES = tuple((s, s.title()) for s in ("draft", "waiting", "confirmed", "assigned", "done", "cancel"))
SALE_STATES = (
    ("draft", "Quotation"),
    ("sent", "Quotation Sent"),
    ("sale", "Sales Order"),
    ("cancel", "Cancelled"),
)


def build_schema(major: int) -> dict[str, ModelSpec]:
    """All model specs for Odoo ``major`` (16..19)."""
    storable = {"is_storable": _f("boolean", "Track Inventory", default=False)} if major >= 18 else {}
    types = PRODUCT_TYPES_NEW if major >= 18 else PRODUCT_TYPES_OLD
    # 16 records the done quantity in quantity_done; 17 renamed it to quantity (+ picked).
    done_qty = "quantity_done" if major < 17 else "quantity"
    picked = {"picked": _f("boolean", "Picked", default=False)} if major >= 17 else {}
    specs = [
        ModelSpec("res.company", "Companies", {**_common(), "name": _f("char", "Name", required=True)}),
        ModelSpec(
            "res.partner",
            "Contact",
            {
                **_common(),
                "name": _f("char", "Name"),
                "is_company": _f("boolean", "Is a Company", default=False),
                "email": _f("char", "Email"),
                "ref": _f("char", "Reference"),
                "active": _f("boolean", "Active", default=True),
            },
            order=(("name", False), ("id", True)),
        ),
        ModelSpec(
            "res.users",
            "User",
            {
                **_common(),
                "name": _f("char", "Name", required=True),
                "login": _f("char", "Login", required=True),
                "partner_id": _m2o("Related Partner", "res.partner"),
                "company_id": _m2o("Company", "res.company"),
                "active": _f("boolean", "Active", default=True),
            },
            order=(("name", False), ("login", False)),
        ),
        ModelSpec(
            "product.product",
            "Product Variant",
            {
                **_common(),
                "name": _f("char", "Name", required=True),
                "default_code": _f("char", "Internal Reference"),
                "barcode": _f("char", "Barcode"),
                "type": _f("selection", "Product Type", required=True, default="consu", selection=types),
                **storable,
                "list_price": _f("float", "Sales Price", default=1.0),
                "active": _f("boolean", "Active", default=True),
                "qty_available": _f("float", "Quantity On Hand", readonly=True, computed=True),
            },
            order=(("default_code", False), ("name", False), ("id", False)),
        ),
        ModelSpec(
            "stock.location",
            "Inventory Locations",
            {
                **_common(),
                "name": _f("char", "Location Name", required=True),
                "complete_name": _f("char", "Full Location Name", readonly=True),
                "location_id": _m2o("Parent Location", "stock.location"),
                "usage": _f("selection", "Location Type", required=True, default="internal", selection=LOCATION_USAGES),
                "active": _f("boolean", "Active", default=True),
            },
            order=(("complete_name", False), ("id", False)),
            rec_name="complete_name",
        ),
        ModelSpec(
            "stock.quant",
            "Quants",
            {
                **_common(),
                "product_id": _m2o("Product", "product.product", required=True),
                "location_id": _m2o("Location", "stock.location", required=True),
                "lot_id": _m2o("Lot/Serial Number", "stock.lot"),
                "package_id": _m2o("Package", "stock.quant.package"),
                "owner_id": _m2o("Owner", "res.partner"),
                "company_id": _m2o("Company", "res.company", default=1),
                "quantity": _f("float", "Quantity", readonly=True, default=0.0),
                "reserved_quantity": _f("float", "Reserved Quantity", readonly=True, default=0.0),
                "inventory_quantity": _f("float", "Counted Quantity", default=0.0),
                "inventory_diff_quantity": _f("float", "Difference", readonly=True, default=0.0),
                "inventory_quantity_set": _f("boolean", "Inventory Quantity Set", default=False),
                "inventory_date": _f("date", "Scheduled Date"),
                "user_id": _m2o("Assigned To", "res.users"),
                "is_outdated": _f("boolean", "Quantity has been moved since last count", readonly=True, default=False),
                "inventory_quantity_auto_apply": _f("float", "Inventoried Quantity", computed=True),
            },
            rec_name="display_name",
        ),
        ModelSpec(
            "stock.move",
            "Stock Move",
            {
                **_common(),
                "name": _f("char", "Description", required=True),
                "reference": _f("char", "Reference", readonly=True),
                "origin": _f("char", "Source Document"),
                "product_id": _m2o("Product", "product.product", required=True),
                "product_uom_qty": _f("float", "Demand", required=True, default=0.0),
                done_qty: _f("float", "Quantity", default=0.0),
                "location_id": _m2o("Source Location", "stock.location", required=True),
                "location_dest_id": _m2o("Destination Location", "stock.location", required=True),
                "state": _f("selection", "Status", default="draft", selection=MOVE_STATES),
                "is_inventory": _f("boolean", "Inventory", default=False),
                **picked,
                "date": _f("datetime", "Date Scheduled"),
                "company_id": _m2o("Company", "res.company", default=1),
            },
            order=(("id", False),),
        ),
        ModelSpec(
            "sale.order",
            "Sales Order",
            {
                **_common(),
                "name": _f("char", "Order Reference", required=True, default="New"),
                "partner_id": _m2o("Customer", "res.partner", required=True),
                "state": _f("selection", "Status", default="draft", selection=SALE_STATES),
                "client_order_ref": _f("char", "Customer Reference"),
                "origin": _f("char", "Source Document"),
                "date_order": _f("datetime", "Order Date"),
                "order_line": Field("one2many", "Order Lines", relation="sale.order.line", inverse="order_id"),
                "amount_total": _f("monetary", "Total", readonly=True, computed=True),
                "company_id": _m2o("Company", "res.company", default=1),
                "user_id": _m2o("Salesperson", "res.users"),
            },
            order=(("date_order", True), ("id", True)),
        ),
        ModelSpec(
            "sale.order.line",
            "Sales Order Line",
            {
                **_common(),
                "order_id": _m2o("Order Reference", "sale.order", required=True),
                "product_id": _m2o("Product", "product.product"),
                "name": _f("text", "Description", required=True),
                "product_uom_qty": _f("float", "Quantity", default=1.0),
                "price_unit": _f("float", "Unit Price", default=0.0),
                "price_subtotal": _f("monetary", "Subtotal", readonly=True, computed=True),
            },
            order=(("order_id", False), ("id", False)),
        ),
        ModelSpec(
            "ir.model",
            "Models",
            {
                **_common(),
                "name": _f("char", "Model Description", required=True),
                "model": _f("char", "Model", required=True),
            },
            order=(("model", False),),
        ),
    ]
    return {spec.name: spec for spec in specs}


def demo_rows(major: int, login: str) -> dict[str, list[Row]]:
    """Rows with explicit ids (like a fresh Odoo demo db); other fields take their defaults."""
    storable = {"type": "consu", "is_storable": True} if major >= 18 else {"type": "product"}
    service = {"type": "service", "is_storable": False} if major >= 18 else {"type": "service"}
    products: list[Row] = [
        {
            "id": n,
            "name": f"Demo Product {n}",
            "default_code": f"DEMO-{n:03d}",
            "list_price": float(10 * n),
            **storable,
        }
        for n in range(1, 21)
    ]
    products.append({"id": 21, "name": "Demo Service", "default_code": "SERVICE-001", "list_price": 50.0, **service})
    return {
        "res.company": [{"id": 1, "name": "YourCompany"}],
        "res.partner": [
            {"id": 1, "name": "YourCompany", "is_company": True},
            {"id": 3, "name": "Mitchell Admin", "email": "admin@yourcompany.example.com"},
            {"id": 7, "name": "Demo Customer", "is_company": True, "ref": "DEMO-C1"},
            {"id": 8, "name": "Second Customer", "email": "second@example.com"},
        ],
        "res.users": [
            # uid 1 is the superuser (OdooBot): inactive and unable to log in, as in Odoo.
            {"id": 1, "name": "OdooBot", "login": "__system__", "active": False, "company_id": 1},
            {"id": 2, "name": "Mitchell Admin", "login": login, "partner_id": 3, "company_id": 1},
        ],
        "product.product": products,
        "stock.location": [
            {"id": 1, "name": "Physical Locations", "usage": "view"},
            {"id": 2, "name": "Partners", "usage": "view"},
            {"id": 3, "name": "Virtual Locations", "usage": "view"},
            {"id": 4, "name": "Vendors", "usage": "supplier", "location_id": 2},
            {"id": 5, "name": "Customers", "usage": "customer", "location_id": 2},
            {"id": 7, "name": "WH", "usage": "view", "location_id": 1},
            {"id": 8, "name": "Stock", "usage": "internal", "location_id": 7},
            {"id": 14, "name": "Inventory adjustment", "usage": "inventory", "location_id": 3},
        ],
    }


INVENTORY_LOCATION_ID = 14  # product.property_stock_inventory of every demo product
SUPERUSER_ID = 1
