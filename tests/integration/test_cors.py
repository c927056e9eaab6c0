"""CORS: a page served from an allowed origin may call the HTTP API (preflight, then the
request, with the headers a client must read exposed); any other origin gets nothing."""

from __future__ import annotations

import uuid

import httpx

from tests.support.stack import ALLOWED_ORIGIN, Stack

SUBMISSION = {
    "kind": "sale.order.create",
    "payload": {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 1}]},
}


def test_an_allowed_origin_may_submit_and_read(sqlite_stack: Stack) -> None:
    preflight = httpx.options(
        f"{sqlite_stack.base}/v1/tasks",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    allowed = {h.strip().lower() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "idempotency-key"} <= allowed

    response = httpx.post(
        f"{sqlite_stack.base}/v1/tasks",
        json=SUBMISSION,
        headers={**sqlite_stack.headers(key=str(uuid.uuid4())), "Origin": ALLOWED_ORIGIN},
    )
    assert response.status_code == 202
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    exposed = {h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")}
    assert {"location", "retry-after"} <= exposed
    assert response.headers["x-content-type-options"] == "nosniff"  # the security headers still apply


def test_another_origin_gets_no_cors_grant(sqlite_stack: Stack) -> None:
    preflight = httpx.options(
        f"{sqlite_stack.base}/v1/tasks",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 400
    assert "access-control-allow-origin" not in preflight.headers
    response = httpx.get(
        f"{sqlite_stack.base}/v1/tasks/{uuid.uuid4()}",
        headers={**sqlite_stack.headers(), "Origin": "http://evil.example"},
    )
    assert "access-control-allow-origin" not in response.headers
