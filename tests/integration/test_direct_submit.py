"""``POST /v1/tasks`` as uvicorn serves it (``DirectRoutes``: the app's middleware around the
endpoint, past Starlette's router) answers byte for byte what the Starlette route answers:
the same status, the same headers in the same order (security headers, CORS, Retry-After,
WWW-Authenticate) and the same body, for accepted, duplicate and refused submissions.
In-process on the real RabbitMQ and a SQLite store: one app, the two paths side by side."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from gateway.app import DirectRoutes, create_app
from shared.config import Settings
from tests.support.services import amqp_url, create_vhost, delete_vhost
from tests.support.stack import ALLOWED_ORIGIN, SIGNING_KEY, TOKENS

AUTH = {"Authorization": f"Bearer {TOKENS['demo']}"}
COUNT = {"kind": "inventory.adjust", "payload": {"location": "WH/Stock", "lines": [{"product": "P-1", "quantity": 3}]}}
OTHER = {"kind": "inventory.adjust", "payload": {"location": "WH/Stock", "lines": [{"product": "P-2", "quantity": 1}]}}


class Paths:
    """One app, reached through ``DirectRoutes`` or straight through Starlette."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)
        self.direct_routes = DirectRoutes(self.app, settings)
        self.direct = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await (self.direct_routes if self.direct else self.app)(scope, receive, send)


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Paths, TestClient]]:
    vhost = create_vhost()
    settings = Settings.from_env(
        {
            "AMQP_URL": amqp_url(vhost),
            "DATABASE_URL": f"sqlite:///{tmp_path_factory.mktemp('direct')}/g.sqlite3",
            "GATEWAY_TOKENS": f"{TOKENS['demo']}=demo",
            "EVENT_SIGNING_KEY": SIGNING_KEY,
            "GATEWAY_ALLOWED_ORIGINS": ALLOWED_ORIGIN,
            "GATEWAY_AUTH_FAILURES_PER_MINUTE": "1000",
            "GATEWAY_MAX_BODY_BYTES": "2048",
        }
    )
    try:
        both = Paths(settings)
        with TestClient(both, raise_server_exceptions=False) as client:
            yield both, client
    finally:
        delete_vhost(vhost)


def answer(paths: tuple[Paths, TestClient], direct: bool, **request: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    both, client = paths
    both.direct = direct
    try:
        response = client.post("/v1/tasks", **request)
    finally:
        both.direct = True
    return response.status_code, response.headers.multi_items(), response.content


def same_answer(paths: tuple[Paths, TestClient], **request: Any) -> int:
    direct = answer(paths, True, **request)
    assert direct == answer(paths, False, **request)
    return direct[0]


def without_length(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [(name, value) for name, value in headers if name != "content-length"]


CASES: dict[str, dict[str, Any]] = {
    "no token": {"json": COUNT, "headers": {"Idempotency-Key": "k-1"}},
    "unknown token": {"json": COUNT, "headers": {"Authorization": "Bearer nope", "Idempotency-Key": "k-1"}},
    "not bearer": {"json": COUNT, "headers": {"Authorization": "Basic eDp5", "Idempotency-Key": "k-1"}},
    "no key": {"json": COUNT, "headers": AUTH},
    "bad key": {"json": COUNT, "headers": {**AUTH, "Idempotency-Key": "a b"}},
    "not json": {"content": b"{nope", "headers": {**AUTH, "Idempotency-Key": "k-2"}},
    "not an object": {"content": b"[1, 2]", "headers": {**AUTH, "Idempotency-Key": "k-2"}},
    "huge number": {"content": b'{"kind": 1' + b"0" * 5000 + b"}", "headers": {**AUTH, "Idempotency-Key": "k-2"}},
    "too large": {"content": b" " * 4096, "headers": {**AUTH, "Idempotency-Key": "k-2"}},
    "unknown kind": {"json": {"kind": "nope", "payload": {}}, "headers": {**AUTH, "Idempotency-Key": "k-3"}},
    "bad payload": {
        "json": {"kind": "inventory.adjust", "payload": {"lines": "x"}},
        "headers": {**AUTH, "Idempotency-Key": "k-4"},
    },
    "allowed origin, refused": {"json": COUNT, "headers": {"Origin": ALLOWED_ORIGIN}},
    "other origin, refused": {"json": COUNT, "headers": {"Origin": "http://evil.example"}},
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_a_refused_submission_gets_the_same_bytes(paths: tuple[Paths, TestClient], case: str) -> None:
    assert same_answer(paths, **CASES[case]) >= 400


@pytest.mark.parametrize("origin", [None, ALLOWED_ORIGIN, "http://evil.example"])
@pytest.mark.parametrize("quoted", [False, True])
def test_an_accepted_and_a_duplicate_submission_get_the_same_bytes(
    paths: tuple[Paths, TestClient], origin: str | None, quoted: bool
) -> None:
    key = f"same-{origin}-{quoted}"
    headers = {**AUTH, "Idempotency-Key": f'"{key}"' if quoted else key, **({"Origin": origin} if origin else {})}
    status, first_headers, first_body = answer(paths, True, json=COUNT, headers=headers)
    assert status == 202 and not json.loads(first_body)["duplicate"]
    # The replays (one per path) find the task the direct path created: same id and times.
    assert same_answer(paths, json=COUNT, headers=headers) == 202
    replay = answer(paths, False, json=COUNT, headers=headers)
    assert without_length(replay[1]) == without_length(first_headers)  # "duplicate": true is 1 byte longer
    assert json.loads(replay[2]) == {**json.loads(first_body), "duplicate": True}
    # A new submission through Starlette has the same shape: the headers differ by the id.
    fresh = {**headers, "Idempotency-Key": f"{key}-fresh"}
    status, starlette_headers, _ = answer(paths, False, json=COUNT, headers=fresh)
    assert status == 202
    assert [n for n, _ in starlette_headers] == [n for n, _ in first_headers]
    # The same key with another payload: 422 from both.
    assert same_answer(paths, json=OTHER, headers=headers) == 422
