"""The OpenAPI document describes submissions from the kinds' own models: a body is one of
the kinds, each with its payload's real schema; every operation has a unique id."""

from __future__ import annotations

from typing import Any

from gateway.openapi import OPENAPI
from shared.kinds import KINDS


def _resolve(ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = OPENAPI["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def test_the_task_body_is_one_of_the_kinds_with_their_payload_models() -> None:
    body = OPENAPI["paths"]["/v1/tasks"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    submission = _resolve(body["$ref"])
    assert submission["discriminator"]["propertyName"] == "kind"
    variants = {v["properties"]["kind"]["const"]: v for v in map(lambda r: _resolve(r["$ref"]), submission["oneOf"])}
    assert set(variants) == set(KINDS)
    for kind, variant in variants.items():
        payload = _resolve(variant["properties"]["payload"]["$ref"])
        model_schema = KINDS[kind].payload_model.model_json_schema()
        assert payload["required"] == model_schema["required"]
        assert payload["additionalProperties"] is False
        # Nested models (the lines) are components too, reachable by reference.
        lines = payload["properties"]["lines"]["items"]["$ref"]
        assert _resolve(lines)["required"] == ["product", "quantity"]


def test_every_operation_has_a_unique_operation_id() -> None:
    ids = [op["operationId"] for path in OPENAPI["paths"].values() for op in path.values()]
    assert len(ids) == len(set(ids)) and all(ids)
