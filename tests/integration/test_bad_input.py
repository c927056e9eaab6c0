"""Bad input always gets a clear, documented answer, and the socket stays usable."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from odoo_gateway_wire.close_codes import CloseCode
from tests.support.processes import free_port, start_gateway
from tests.support.stack import ALLOWED_ORIGIN, TOKENS, Stack

from .test_roundtrip import SALE, orders_for, recv_json, send_sale, ws_connect


async def closed_with(ws: Any) -> tuple[int, str]:
    with pytest.raises(websockets.ConnectionClosed) as info:
        while True:
            await ws.recv()
    assert info.value.rcvd is not None
    return info.value.rcvd.code, info.value.rcvd.reason


async def test_malformed_frames_get_error_frames_and_socket_stays_usable(stack: Stack) -> None:
    async with await ws_connect(stack.ws) as ws:
        await ws.send("{not json")
        assert (await recv_json(ws))["code"] == "invalid_request"
        await ws.send(json.dumps([1, 2, 3]))
        assert (await recv_json(ws))["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "teleport", "ref": "t1"}))
        frame = await recv_json(ws)
        assert (frame["type"], frame["ref"], frame["code"]) == ("error", "t1", "unknown_type")
        await ws.send(
            json.dumps(
                {
                    "type": "submit",
                    "ref": "s1",
                    "idempotency_key": "k",
                    "kind": "inventory.adjust",
                    "payload": {"location": "", "lines": [{"product": "DEMO-001", "quantity": -1}]},
                }
            )
        )
        frame = await recv_json(ws)
        assert (frame["ref"], frame["code"]) == ("s1", "validation_failed")
        locs = {tuple(d["loc"]) for d in frame["details"]}
        assert ("payload", "location") in locs and ("payload", "lines", 0, "quantity") in locs
        await ws.send(
            json.dumps({"type": "submit", "ref": "s2", "idempotency_key": "k", "kind": "nope", "payload": {}})
        )
        assert (await recv_json(ws))["code"] == "validation_failed"
        await ws.send(json.dumps({"type": "resume", "ref": "r", "tasks": {"x": -1}}))
        assert (await recv_json(ws))["code"] == "validation_failed"
        await ws.send(b"\x00\x01binary")
        assert (await recv_json(ws))["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "auth", "ref": "a", "token": "again"}))
        assert (await recv_json(ws))["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "ping", "ref": 42}))
        assert await recv_json(ws) == {"type": "pong", "ref": 42}


async def test_oversize_frame_closes_with_1009(stack: Stack) -> None:
    async with await ws_connect(stack.ws, max_size=None) as ws:
        await ws.send(json.dumps({"type": "ping", "ref": "x" * 70_000}))
        code, _ = await closed_with(ws)
    assert code == CloseCode.MESSAGE_TOO_BIG == 1009


async def test_wrong_token_in_header_closes_4001(stack: Stack) -> None:
    async with websockets.connect(stack.ws, additional_headers={"Authorization": "Bearer wrong"}) as ws:
        code, reason = await closed_with(ws)
    assert (code, reason) == (CloseCode.AUTH_FAILED, "invalid token")


async def test_auth_frame_flow(stack: Stack) -> None:
    async with websockets.connect(stack.ws) as ws:
        await ws.send(json.dumps({"type": "auth", "ref": "a1", "token": TOKENS["demo"]}))
        assert await recv_json(ws) == {"type": "authenticated", "ref": "a1", "principal": "demo"}
        await send_sale(ws)
        assert (await recv_json(ws))["type"] == "accepted"
    async with websockets.connect(stack.ws) as ws:
        await ws.send(json.dumps({"type": "auth", "ref": "a1", "token": "wrong"}))
        assert (await closed_with(ws))[0] == CloseCode.AUTH_FAILED
    async with websockets.connect(stack.ws) as ws:
        await ws.send(json.dumps({"type": "ping", "ref": "p"}))
        assert (await closed_with(ws))[0] == CloseCode.AUTH_FAILED
    async with websockets.connect(stack.ws) as ws:
        assert (await closed_with(ws))[0] == CloseCode.AUTH_TIMEOUT


async def test_origin_allow_list(stack: Stack) -> None:
    with pytest.raises(websockets.InvalidStatus) as info:
        async with websockets.connect(stack.ws, origin="http://evil.example"):  # type: ignore[arg-type]
            pass
    assert info.value.response.status_code == 403
    async with websockets.connect(
        stack.ws,
        origin=ALLOWED_ORIGIN,  # type: ignore[arg-type]
        additional_headers={"Authorization": f"Bearer {TOKENS['demo']}"},
    ) as ws:
        await ws.send(json.dumps({"type": "ping", "ref": 1}))
        assert await recv_json(ws) == {"type": "pong", "ref": 1}


async def test_http_bad_input(stack: Stack) -> None:
    good = {"kind": "sale.order.create", "payload": SALE}
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        no_token = await http.post("/v1/tasks", headers={"Idempotency-Key": "k"}, json=good)
        bad_token = await http.post(
            "/v1/tasks", headers={"Authorization": "Bearer nope", "Idempotency-Key": "k"}, json=good
        )
        no_key = await http.post("/v1/tasks", headers=stack.headers(), json=good)
        bad_json = await http.post("/v1/tasks", headers=stack.headers(key=str(uuid.uuid4())), content=b"{nope")
        bad_body = await http.post(
            "/v1/tasks", headers=stack.headers(key=str(uuid.uuid4())), json={"kind": "sale.order.create"}
        )
        bad_payload = await http.post(
            "/v1/tasks",
            headers=stack.headers(key=str(uuid.uuid4())),
            json={"kind": "sale.order.create", "payload": {"customer": "", "lines": []}},
        )
        too_big = await http.post(
            "/v1/tasks",
            headers=stack.headers(key=str(uuid.uuid4())),
            content=b'{"kind":"x","payload":{"a":"' + b"x" * 1_100_000 + b'"}}',
        )
        unknown = await http.get("/v1/nothing-here", headers=stack.headers())
    assert no_token.status_code == bad_token.status_code == 401
    assert no_token.headers["www-authenticate"].startswith("Bearer")
    assert (no_key.status_code, no_key.json()["error"]["code"]) == (400, "invalid_request")
    assert (bad_json.status_code, bad_json.json()["error"]["code"]) == (400, "invalid_request")
    assert bad_body.status_code == 422
    assert [d["loc"] for d in bad_body.json()["error"]["details"]] == [["payload"]]
    assert bad_payload.status_code == 422
    assert {tuple(d["loc"]) for d in bad_payload.json()["error"]["details"]} == {
        ("payload", "customer"),
        ("payload", "lines"),
    }
    assert too_big.status_code == 413
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


async def test_openapi_document(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert set(doc["paths"]) >= {"/v1/tasks", "/v1/tasks/{task_id}", "/v1/tasks/{task_id}/events"}


async def test_broker_down_is_503_never_202(stack: Stack, tmp_path: Path) -> None:
    dead = free_port()  # nothing listens here: RabbitMQ "down" for this gateway
    env = {**stack.env, "AMQP_URL": f"amqp://guest:guest@127.0.0.1:{dead}/%2F"}
    proc, base = start_gateway(env, tmp_path, ready=False, name="gateway-nobroker")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            ready = await http.get("/readyz")
            key = str(uuid.uuid4())
            response = await http.post(
                "/v1/tasks",
                headers=stack.headers(key=key),
                json={"kind": "sale.order.create", "payload": SALE},
            )
        assert ready.status_code == 503 and ready.json()["checks"]["broker"] is False
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "broker_unavailable"
        assert int(response.headers["retry-after"]) > 0
        async with websockets.connect(
            base.replace("http", "ws") + "/v1/ws",
            additional_headers={"Authorization": f"Bearer {TOKENS['demo']}"},
        ) as ws:
            await send_sale(ws, key)
            frame = await recv_json(ws)
        assert (frame["type"], frame["ref"], frame["code"]) == ("error", "s", "broker_unavailable")
    finally:
        proc.stop()
    # The same submission, retried against a gateway whose broker is up: accepted, once.
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        retry = await http.post(
            "/v1/tasks", headers=stack.headers(key=key), json={"kind": "sale.order.create", "payload": SALE}
        )
    # Same store: the task recorded during the outage (never acknowledged) is the one
    # now published and acknowledged.
    assert retry.status_code == 202 and retry.json()["duplicate"] is True
    final = await asyncio.to_thread(stack.wait_final, retry.json()["task_id"])
    assert final["status"] == "succeeded"
    assert len(orders_for(stack, final["task_id"])) == 1


HUGE_INTEGER = "9" * 5000  # Python refuses int() of over 4,300 digits: once a 500 here


async def test_huge_integers_and_unicode_digits_get_4xx_not_500(stack: Stack) -> None:
    body = '{"kind": "inventory.adjust", "payload": {"location": "WH/Stock", "lines": [{"product": "DEMO-001", '
    body += f'"quantity": {HUGE_INTEGER}' + "}]}}"
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        response = await http.post(
            "/v1/tasks",
            headers={**stack.headers(key=str(uuid.uuid4())), "Content-Type": "application/json"},
            content=body,
        )
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and "more than 64 digits" in error["message"]
        submitted = await http.post(
            "/v1/tasks",
            headers=stack.headers(key=str(uuid.uuid4())),
            json={"kind": "sale.order.create", "payload": SALE},
        )
        task_id = submitted.json()["task_id"]
        for after in ("²", "①", "٣", "-1", "1" * 10):
            bad = await http.get(f"/v1/tasks/{task_id}/events", params={"after": after}, headers=stack.headers())
            assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request", (after, bad.text)


async def test_huge_integer_in_a_frame_gets_an_error_frame_or_4001_before_auth(stack: Stack) -> None:
    async with await ws_connect(stack.ws) as ws:
        await ws.send('{"type": "ping", "ref": ' + HUGE_INTEGER + "}")
        frame = await recv_json(ws)
        assert frame["type"] == "error" and frame["code"] == "invalid_request"
        await ws.send(json.dumps({"type": "ping", "ref": "still-here"}))
        assert await recv_json(ws) == {"type": "pong", "ref": "still-here"}
    async with websockets.connect(stack.ws) as ws:  # no bearer header: the first frame must be auth
        await ws.send('{"type": "auth", "ref": ' + HUGE_INTEGER + ', "token": "x"}')
        code, _ = await closed_with(ws)
        assert code == CloseCode.AUTH_FAILED


async def test_every_http_answer_carries_the_security_headers(stack: Stack) -> None:
    from gateway.security_headers import SECURITY_HEADERS

    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        answers = [await http.get(path) for path in ("/", "/static/app.js", "/healthz", "/v1/tasks/nope")]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.url, name)
    assert "frame-ancestors 'none'" in answers[0].headers["content-security-policy"]
