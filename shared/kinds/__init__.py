"""The task-kind registry. Adding a kind: one module beside this one, one line below."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from shared.errors import ValidationFailed
from shared.kinds.base import OdooCall, TaskKind, task_reference
from shared.kinds.inventory_adjust import INVENTORY_ADJUST
from shared.kinds.sale_order_create import SALE_ORDER_CREATE

__all__ = ["KINDS", "OdooCall", "TaskKind", "field_errors", "resource_keys", "task_reference", "validate_payload"]

KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (INVENTORY_ADJUST, SALE_ORDER_CREATE)}


def field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[dict[str, Any]]:
    """Pydantic errors as ``[{"loc": [...], "msg": ..., "type": ...}]`` with no input echo
    (inputs may be large or sensitive; the client has them anyway)."""
    return [
        {"loc": [*prefix, *err["loc"]], "msg": err["msg"], "type": err["type"]}
        for err in exc.errors(include_url=False, include_input=False)
    ]


def validate_payload(kind: str, payload: Any) -> dict[str, Any]:
    """The payload, normalised by its kind's model; raises ValidationFailed with field errors."""
    task_kind = KINDS.get(kind)
    if task_kind is None:
        raise ValidationFailed(
            f"Unknown task kind '{kind}'. Known kinds: {', '.join(sorted(KINDS))}.",
            details=[{"loc": ["kind"], "msg": "unknown task kind", "type": "enum"}],
        )
    try:
        model = task_kind.payload_model.model_validate(payload)
    except ValidationError as exc:
        raise ValidationFailed(
            "The payload is not valid for this task kind.", details=field_errors(exc, ("payload",))
        ) from None
    return model.model_dump(mode="json")


def resource_keys(kind: str, payload: dict[str, Any]) -> tuple[str, ...]:
    """The Odoo records a (validated) payload of ``kind`` changes; () for an unknown kind."""
    task_kind = KINDS.get(kind)
    return task_kind.resource_keys(payload) if task_kind is not None else ()
