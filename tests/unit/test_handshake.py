"""The WebSocket handshake taken over as httptools parsed it (gateway/transport.py): it
must never accept what ``websockets`` (as uvicorn configures it) would refuse, must give
the same Sec-WebSocket-Accept, and must take the handshakes real clients send."""

from __future__ import annotations

import pytest
from websockets.http11 import Request
from websockets.server import ServerProtocol

from gateway.transport import handshake_key

KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
BASE = [
    (b"host", b"127.0.0.1:8000"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", KEY),
    (b"sec-websocket-version", b"13"),
]


def websockets_answer(method: str, url: bytes, headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """What uvicorn's long way gives: the request serialised as uvicorn does, parsed and
    checked by websockets; the Sec-WebSocket-Accept of a 101, else None."""
    raw = b"".join([method.encode(), b" ", url, b" HTTP/1.1\r\n", *(n + b": " + v + b"\r\n" for n, v in headers)])
    conn = ServerProtocol(extensions=[], max_size=65536)
    conn.receive_data(raw + b"\r\n")
    requests = [event for event in conn.events_received() if isinstance(event, Request)]
    if not requests:
        return None
    response = conn.accept(requests[0])
    return response.headers["Sec-WebSocket-Accept"].encode() if response.status_code == 101 else None


def without(name: bytes) -> list[tuple[bytes, bytes]]:
    return [(n, v) for n, v in BASE if n != name]


TAKEN = {
    "the lean client": BASE + [(b"authorization", b"Bearer tok-demo")],
    "a browser": BASE[:2]
    + [
        (b"connection", b"keep-alive, Upgrade"),
        (b"origin", b"http://allowed.example"),
        (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
        (b"sec-websocket-protocol", b"gateway.v1c"),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64) \xe2\x80\x94"),
    ]
    + BASE[3:],
    "upgrade in any case": without(b"upgrade") + [(b"upgrade", b"WebSocket")],
}
LEFT = {
    "POST": ("POST", BASE),
    "no key": ("GET", without(b"sec-websocket-key")),
    "two keys": ("GET", BASE + [(b"sec-websocket-key", KEY)]),
    "a short key": ("GET", without(b"sec-websocket-key") + [(b"sec-websocket-key", b"c2hvcnQ=")]),
    "a key not base64": ("GET", without(b"sec-websocket-key") + [(b"sec-websocket-key", b"not base64 at all!!!!!==")]),
    "version 8": ("GET", without(b"sec-websocket-version") + [(b"sec-websocket-version", b"8")]),
    "no upgrade token": ("GET", without(b"connection") + [(b"connection", b"keep-alive")]),
    "two upgrades": ("GET", without(b"upgrade") + [(b"upgrade", b"websocket, h2c")]),
    "two origins": ("GET", BASE + [(b"origin", b"http://a"), (b"origin", b"http://b")]),
    "a bad subprotocol": ("GET", BASE + [(b"sec-websocket-protocol", b"a b")]),
    "a body": ("GET", BASE + [(b"content-length", b"5")]),
    "a control character": ("GET", BASE + [(b"x-weird", b"a\x01b")]),
    "a long line": ("GET", BASE + [(b"x-long", b"x" * 9000)]),
    "too many headers": ("GET", BASE + [(b"x-%d" % n, b"1") for n in range(130)]),
}


@pytest.mark.parametrize("name", TAKEN)
def test_real_handshakes_are_taken_with_the_same_answer(name: str) -> None:
    key = handshake_key("GET", b"/v1/ws", TAKEN[name])
    assert key is not None
    assert key == websockets_answer("GET", b"/v1/ws", TAKEN[name]) == b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("name", LEFT)
def test_anything_else_is_left_to_websockets(name: str) -> None:
    method, headers = LEFT[name]
    assert handshake_key(method, b"/v1/ws", headers) is None


@pytest.mark.parametrize("name", LEFT)
def test_never_wider_than_websockets(name: str) -> None:
    method, headers = LEFT[name]
    if websockets_answer(method, b"/v1/ws", headers) is None:
        assert handshake_key(method, b"/v1/ws", headers) is None


def test_a_non_ascii_path_is_left_to_websockets() -> None:
    assert handshake_key("GET", "/v1/ws?x=é".encode(), BASE) is None
