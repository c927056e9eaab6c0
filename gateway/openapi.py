"""The OpenAPI 3.1 document of the HTTP API, written by hand (Starlette generates none)
and checked by schemathesis in the test suite."""

from __future__ import annotations

from typing import Any

from odoo_gateway_wire.statuses import TaskStatus
from shared.kinds import KINDS
from shared.version import VERSION

__all__ = ["OPENAPI"]

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
            },
        }
    },
}
_NULLABLE_OBJECT = {"anyOf": [{"type": "object"}, {"type": "null"}]}
_STATUS = {"type": "string", "enum": [status.value for status in TaskStatus]}
_TASK: dict[str, Any] = {
    "type": "object",
    "required": ["task_id", "kind", "status", "seq", "attempts", "created_at", "updated_at"],
    "properties": {
        "task_id": {"type": "string"},
        "kind": {"type": "string"},
        "status": _STATUS,
        "seq": {"type": "integer", "minimum": 0},
        "attempts": {"type": "integer", "minimum": 0},
        "result": _NULLABLE_OBJECT,
        "error": _NULLABLE_OBJECT,
        "created_at": {"type": "number"},
        "updated_at": {"type": "number"},
        "history_pruned": {"type": "boolean"},
        "duplicate": {"type": "boolean"},
    },
}
_EVENT = {
    "type": "object",
    "required": ["seq", "status", "attempt", "at"],
    "properties": {
        "seq": {"type": "integer"},
        "status": _STATUS,
        "attempt": {"type": "integer"},
        "result": _NULLABLE_OBJECT,
        "error": _NULLABLE_OBJECT,
        "at": {"type": "number"},
    },
}


def _err(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ERROR}}}


def _json(description: str, schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}, **extra}


_AUTH_ERRORS = {
    "401": _err("Missing or invalid bearer token"),
    "408": _err("The request head or body did not arrive in time"),
    "429": _err("Too many failed authentications from this address; retry after Retry-After seconds"),
    "431": _err("Request head larger than GATEWAY_MAX_HEADER_BYTES"),
}
_TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
_ADMIN_TASK = {
    **_TASK,
    "required": [*_TASK["required"], "tenant"],
    "properties": {**_TASK["properties"], "tenant": {"type": "string"}},
}


def _submission_schemas() -> dict[str, Any]:
    """The task body as ``oneOf`` by ``kind``, each variant's payload the JSON Schema of the
    kind's own pydantic model (the one the gateway validates with), so a generated or
    hand-written client sees exactly what a submission must hold."""
    schemas: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for kind in sorted(KINDS):
        model = KINDS[kind].payload_model
        payload = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(payload.pop("$defs", {}))
        schemas[model.__name__] = payload
        body = f"{model.__name__}Submission"
        schemas[body] = {
            "type": "object",
            "required": ["kind", "payload"],
            "additionalProperties": False,
            "properties": {"kind": {"const": kind}, "payload": {"$ref": f"#/components/schemas/{model.__name__}"}},
        }
        mapping[kind] = f"#/components/schemas/{body}"
    schemas["Submission"] = {
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "kind", "mapping": mapping},
    }
    return schemas


#: One name per operation, for generated clients (and logs that name an operation).
_OPERATION_IDS = {
    ("/v1/tasks", "post"): "submitTask",
    ("/v1/tasks/{task_id}", "get"): "getTask",
    ("/v1/tasks/{task_id}/events", "get"): "listTaskEvents",
    ("/v1/admin/failed", "get"): "listFailedTasks",
    ("/v1/admin/tasks/{task_id}/retry", "post"): "retryTask",
    ("/healthz", "get"): "health",
    ("/metrics", "get"): "metrics",
    ("/readyz", "get"): "readiness",
}

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    # The release (package metadata); the wire protocol is v1 (paths under /v1).
    "info": {"title": "Odoo submission gateway", "version": VERSION},
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {"Task": _TASK, "Event": _EVENT, "Error": _ERROR, **_submission_schemas()},
    },
    "security": [{"bearer": []}],
    "paths": {
        "/v1/tasks": {
            "post": {
                "summary": "Submit a task; answered once it is durable",
                "parameters": [
                    {
                        "name": "Idempotency-Key",
                        "in": "header",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                    }
                ],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Submission"}}},
                },
                "responses": {
                    "202": _json(
                        "Accepted: recorded and confirmed by RabbitMQ",
                        _TASK,
                        headers={
                            "Location": {"schema": {"type": "string"}},
                            "Retry-After": {"schema": {"type": "string"}},
                        },
                    ),
                    "400": _err("Malformed JSON or missing Idempotency-Key"),
                    **_AUTH_ERRORS,
                    "413": _err("Body too large"),
                    "422": _err("Invalid body or payload (field errors), or key reused"),
                    "503": _err("Broker or store unavailable; retry with the same key"),
                },
            }
        },
        "/v1/tasks/{task_id}": {
            "get": {
                "summary": "A task's current state",
                "parameters": [_TASK_ID],
                "responses": {
                    "200": _json("The task", _TASK),
                    **_AUTH_ERRORS,
                    "404": _err("Unknown task (or another principal's)"),
                    "503": _err("Store unavailable"),
                },
            }
        },
        "/v1/tasks/{task_id}/events": {
            "get": {
                "summary": "A task's events after a seq",
                "parameters": [
                    _TASK_ID,
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0},
                    },
                ],
                "responses": {
                    "200": _json(
                        "Events in seq order",
                        {
                            "type": "object",
                            "required": ["task_id", "status", "seq", "events", "history_pruned"],
                            "properties": {
                                "task_id": {"type": "string"},
                                "status": _STATUS,
                                "seq": {"type": "integer"},
                                "events": {"type": "array", "items": _EVENT},
                                "history_pruned": {"type": "boolean"},
                            },
                        },
                    ),
                    "400": _err("Bad 'after'"),
                    **_AUTH_ERRORS,
                    "404": _err("Unknown task (or another principal's)"),
                    "503": _err("Store unavailable"),
                },
            }
        },
        "/v1/admin/failed": {
            "get": {
                "summary": "Failed tasks, newest first (operators: GATEWAY_ADMIN_TOKEN)",
                "parameters": [
                    {"name": "tenant", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
                    },
                    {"name": "before", "in": "query", "required": False, "schema": {"type": "number"}},
                ],
                "responses": {
                    "200": _json(
                        "Failed tasks",
                        {
                            "type": "object",
                            "required": ["tasks"],
                            "properties": {"tasks": {"type": "array", "items": _ADMIN_TASK}},
                        },
                    ),
                    "400": _err("Bad 'limit' or 'before'"),
                    **_AUTH_ERRORS,
                    "503": _err("Store unavailable"),
                },
            }
        },
        "/v1/admin/tasks/{task_id}/retry": {
            "post": {
                "summary": "Run a failed task again (operators: GATEWAY_ADMIN_TOKEN)",
                "parameters": [_TASK_ID],
                "responses": {
                    "202": _json(
                        "Reopened and published", _ADMIN_TASK, headers={"Location": {"schema": {"type": "string"}}}
                    ),
                    **_AUTH_ERRORS,
                    "404": _err("Unknown task"),
                    "409": _err("The task is not failed"),
                    "503": _err("Broker or store unavailable; retry"),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "Alive, and the version running",
                "security": [],
                "responses": {
                    "200": {
                        "description": "alive",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["status", "version"],
                                    "properties": {"status": {"const": "ok"}, "version": {"type": "string"}},
                                }
                            }
                        },
                    }
                },
            }
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics (text exposition format)",
                "security": [],
                "responses": {
                    "200": {"description": "metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}
                },
            }
        },
        "/readyz": {
            "get": {
                "summary": "Broker, event relay and store reachable",
                "security": [],
                "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}},
            }
        },
    },
}
for (_path, _method), _operation_id in _OPERATION_IDS.items():
    OPENAPI["paths"][_path][_method]["operationId"] = _operation_id
