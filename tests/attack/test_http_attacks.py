"""Hostile HTTP peers against a running gateway with tight bounds (tests/attack/conftest.py
BOUNDS): heads that never end or never stop growing, bodies that never arrive, password
guessing, and random bytes where headers, bodies and query values go.

Every test prints the figure it measured as an ``ATTACK ...`` line (run with ``-s``)."""

from __future__ import annotations

import json
import re
import select
import selectors
import socket
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import Proc
from tests.support.stack import TOKENS, Stack, running_stack

from .conftest import BOUNDS, LOG_DIR
from .peers import RawWebSocket, rss_mib

HEADER_TIMEOUT = float(BOUNDS["GATEWAY_HEADER_TIMEOUT"])
BODY_TIMEOUT = float(BOUNDS["GATEWAY_BODY_TIMEOUT"])
MAX_HEADER_BYTES = int(BOUNDS["GATEWAY_MAX_HEADER_BYTES"])
#: A timer that fires at ``bound`` may fire a little early by the clocks of two processes,
#: and late on a busy two-core machine; neither may make it look like no bound at all.
EARLY = 0.25
LATE = 2.0

MiB = 1 << 20
CHUNK = b"a" * 65536
GOOD_TOKEN = TOKENS["demo"]
WRONG_TOKEN = "wrong-token-SECRET123"
SALE = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}


# -- raw HTTP, byte by byte -------------------------------------------------------------


def _connect(base: str, timeout: float = 10.0) -> socket.socket:
    host, port = base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=timeout)


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def _parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


def _read_response(sock: socket.socket, timeout: float = 10.0, buffered: bytes = b"") -> RawResponse:
    """One response (head and content-length body) from ``sock``; no more."""
    sock.settimeout(timeout)
    data = buffered
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a whole response head: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status, headers = _parse_head(head)
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before the whole body: {data!r}")
        body += chunk
    return RawResponse(status, headers, body[:length])


def _read_until_closed(sock: socket.socket, timeout: float) -> tuple[bytes, bool]:
    """Everything the server sends until it ends the connection: (bytes, ended in time)."""
    deadline = time.monotonic() + timeout
    data = b""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            break
        except OSError:  # reset: whatever came before it is all there is
            return data, True
        if not chunk:
            return data, True
        data += chunk
    return data, False


def _status_of(raw: bytes) -> int | None:
    match = re.match(rb"HTTP/1\.1 (\d{3}) ", raw)
    return int(match.group(1)) if match else None


def _json_error(raw: bytes) -> dict[str, Any]:
    head, _, body = raw.partition(b"\r\n\r\n")
    _, headers = _parse_head(head)
    assert headers.get("content-type", "").startswith("application/json"), raw
    error: dict[str, Any] = json.loads(body[: int(headers["content-length"])])["error"]
    return error


def _log_size(proc: Proc) -> int:
    return proc.log_path.stat().st_size


def _log_since(proc: Proc, offset: int) -> str:
    with proc.log_path.open("rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


# -- 1. a head that never ends and never stops growing -----------------------------------


@dataclass
class _Flooder:
    """One connection sending an endless header line until the server ends it."""

    sock: socket.socket
    started: float
    sent: int = 0
    received: bytes = b""
    closed_at: float | None = None
    how: str = ""
    errors: list[str] = field(default_factory=list)


def _flood(base: str, connections: int, limit: int, pid: int) -> tuple[list[_Flooder], float]:
    """``connections`` connections each sending one endless header line, up to ``limit``
    bytes, until the server ends them (or 30 s pass): the flooders and the peak gateway RSS."""
    selector = selectors.DefaultSelector()
    flooders = []
    for _ in range(connections):
        sock = _connect(base)
        # A small send buffer: what ``send`` takes is then close to what reached the
        # server's socket, not megabytes parked in our own kernel buffer.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sock.setblocking(False)
        flooder = _Flooder(sock, time.monotonic())
        flooders.append(flooder)
        selector.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, flooder)
    peak = rss_mib(pid)
    deadline = time.monotonic() + 30
    while any(f.closed_at is None for f in flooders) and time.monotonic() < deadline:
        for key, events in selector.select(timeout=0.5):
            flooder = key.data
            # Read first: the 431 is there before the reset that may follow it.
            if events & selectors.EVENT_READ and not _flood_read(flooder):
                selector.unregister(flooder.sock)
                continue
            if events & selectors.EVENT_WRITE and not _flood_write(flooder, limit):
                selector.modify(flooder.sock, selectors.EVENT_READ, flooder)
        peak = max(peak, rss_mib(pid))
    selector.close()
    return flooders, peak


def _flood_read(flooder: _Flooder) -> bool:
    """Read what the server sent; False once it has ended the connection."""
    try:
        chunk = flooder.sock.recv(65536)
    except BlockingIOError:
        return True
    except OSError as exc:
        chunk, flooder.how = b"", f"reset ({type(exc).__name__})"
    flooder.received += chunk
    if chunk:
        return True
    flooder.closed_at = time.monotonic()
    flooder.how = flooder.how or "closed"
    return False


def _flood_write(flooder: _Flooder, limit: int) -> bool:
    """Send one more chunk of the header line; False once there is no more to send."""
    try:
        flooder.sent += flooder.sock.send(CHUNK)
    except BlockingIOError:
        return True
    except OSError as exc:  # BrokenPipe, ConnectionReset: the server is gone
        flooder.errors.append(type(exc).__name__)
        return False
    return flooder.sent < limit


def test_huge_unfinished_headers_get_431_and_cost_no_memory(attack_stack: Stack) -> None:
    pid = attack_stack.gateways[0][0].pid
    limit, connections = 50 * MiB, 4
    rss_before = rss_mib(pid)
    flooders, peak = _flood(attack_stack.base, connections, limit, pid)
    time.sleep(0.5)
    rss_after = rss_mib(pid)
    for flooder in flooders:
        flooder.sock.close()

    statuses = [_status_of(f.received) for f in flooders]
    for number, flooder in enumerate(flooders):
        seconds = (flooder.closed_at or float("nan")) - flooder.started
        print(
            f"ATTACK huge-header #{number}: {statuses[number]} after {flooder.sent / MiB:.2f} MiB sent, "
            f"{flooder.how} {seconds:.3f} s after connecting (send errors: {flooder.errors or 'none'})"
        )
    print(
        f"ATTACK huge-header: {connections} x up to {limit // MiB} MiB heads, gateway RSS "
        f"{rss_before:.1f} -> peak {peak:.1f} -> {rss_after:.1f} MiB"
    )
    assert all(f.closed_at is not None for f in flooders), "the server kept a flooding connection open"
    # The 431 can be lost when the reset for the unread flood overtakes it; most are read.
    assert statuses.count(431) >= 1, [f.received[:200] for f in flooders]
    assert set(statuses) <= {431, None}, statuses
    for flooder in flooders:
        if flooder.received:
            assert _json_error(flooder.received)["code"] == "headers_too_large"
        # Without the bound httptools buffers the whole head: 50 MiB each.
        assert flooder.sent < 1 * MiB, f"{flooder.sent} bytes went in before the server closed"
    assert peak - rss_before < 15, f"gateway RSS {rss_before:.1f} -> peak {peak:.1f} MiB"
    assert httpx.get(f"{attack_stack.base}/healthz", timeout=10).status_code == 200


def test_body_arriving_with_the_head_is_not_counted_as_head(attack_stack: Stack) -> None:
    """The head bound is on the head: a small head with a body over ``MAX_HEADER_BYTES``
    (well under the body limit) is a request like any other, however the bytes arrive."""
    padding = "x" * (MAX_HEADER_BYTES * 4)
    body = json.dumps({"kind": "sale.order.create", "payload": SALE, "padding": padding}).encode()
    # One write: head and body reach the server in the same reads.
    with _connect(attack_stack.base) as sock:
        sock.sendall(_submit_head(len(body)) + body)
        one_write = _read_response(sock)
    # A real client: whether head and body arrive in one read is up to the kernel.
    statuses = []
    with httpx.Client(base_url=attack_stack.base, timeout=10) as client:
        for _ in range(10):
            headers = {"Authorization": f"Bearer {GOOD_TOKEN}", "Idempotency-Key": str(uuid.uuid4())}
            headers["Content-Type"] = "application/json"
            statuses.append(client.post("/v1/tasks", content=body, headers=headers).status_code)
    print(
        f"ATTACK big-body-small-head: {len(body)} body bytes after a small head: one write -> {one_write.status}, "
        f"httpx -> {statuses}"
    )
    # The body reached the app, which refuses the unknown field "padding".
    assert one_write.status == 422, one_write
    assert one_write.json()["error"]["code"] == "validation_failed"
    assert statuses == [422] * 10


# -- 2. a head that never ends, slowly ------------------------------------------------------


def _cut_after(stack: Stack, opening: bytes, drip: bytes = b"", every: float = 0.5) -> tuple[bytes, float, int]:
    """Open a connection, send ``opening``, then ``drip`` every ``every`` seconds until the
    server ends it: (what the server sent, seconds from connecting to its end, bytes dripped)."""
    sock = _connect(stack.base)
    started = time.monotonic()
    dripped = 0
    try:
        if opening:
            sock.sendall(opening)
        data = b""
        deadline = started + HEADER_TIMEOUT + 10
        while time.monotonic() < deadline:
            received, ended = _read_until_closed(sock, every)
            data += received
            if ended:
                return data, time.monotonic() - started, dripped
            if drip:
                try:
                    sock.sendall(drip)
                    dripped += len(drip)
                except OSError:
                    pass  # the reset after our drip: the next read ends it
        raise AssertionError(f"the connection was still open after {time.monotonic() - started:.1f} s: {data!r}")
    finally:
        sock.close()


@pytest.mark.parametrize(
    ("name", "opening", "drip"),
    [
        ("half-sent-head", b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b""),
        ("idle", b"", b""),
        ("slowloris", b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a"),
    ],
)
def test_unfinished_head_is_cut_at_the_header_timeout(
    attack_stack: Stack, name: str, opening: bytes, drip: bytes
) -> None:
    data, seconds, dripped = _cut_after(attack_stack, opening, drip)
    print(f"ATTACK {name}: {_status_of(data)} and closed {seconds:.2f} s after connecting ({dripped} bytes dripped)")
    assert _status_of(data) == 408, data
    assert _json_error(data)["code"] == "request_timeout"
    # The bound counts from the connection, not from the last byte: a drip does not extend it.
    assert HEADER_TIMEOUT - EARLY <= seconds < HEADER_TIMEOUT + LATE
    if drip:
        assert dripped >= 2, "the slowloris was not dripping while the bound ran"


# -- 3. the bound restarts for each request on a kept-alive connection --------------------


def test_keep_alive_second_head_unfinished_gets_408(attack_stack: Stack) -> None:
    sock = _connect(attack_stack.base)
    try:
        opened = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
        first = _read_response(sock)
        assert first.status == 200 and first.json()["status"] == "ok"
        assert first.headers.get("connection", "keep-alive") != "close"
        # Idle for most of the header timeout, less than the keep-alive timeout (5 s): the
        # timer of the first request must not still be running for the second.
        time.sleep(HEADER_TIMEOUT * 0.75)
        second_began = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n")
        data, ended = _read_until_closed(sock, HEADER_TIMEOUT + 10)
        closed = time.monotonic()
    finally:
        sock.close()
    print(
        f"ATTACK keep-alive-unfinished-second-head: {_status_of(data)} {closed - second_began:.2f} s after the "
        f"second head began ({closed - opened:.2f} s after connecting)"
    )
    assert ended, "the server did not end the connection"
    assert _status_of(data) == 408, data
    assert _json_error(data)["code"] == "request_timeout"
    assert HEADER_TIMEOUT - EARLY <= closed - second_began < HEADER_TIMEOUT + LATE


def test_keep_alive_requests_in_a_row_are_not_cut(attack_stack: Stack) -> None:
    """The head timer is per request: requests that each finish in time may go on longer
    than the header timeout in all."""
    sock = _connect(attack_stack.base)
    try:
        opened = time.monotonic()
        count = 0
        while time.monotonic() - opened < HEADER_TIMEOUT * 2:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n")
            assert _read_response(sock).status == 200
            count += 1
            time.sleep(0.4)
    finally:
        sock.close()
    print(f"ATTACK keep-alive-in-a-row: {count} requests over {time.monotonic() - opened:.1f} s on one connection")


# -- 4. a body that never arrives -----------------------------------------------------------


def _submit_head(length: int | str, key: str | None = None) -> bytes:
    return (
        "POST /v1/tasks HTTP/1.1\r\nHost: x\r\n"
        f"Authorization: Bearer {GOOD_TOKEN}\r\n"
        f"Idempotency-Key: {key or uuid.uuid4()}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_slow_body_gets_408(attack_stack: Stack) -> None:
    sock = _connect(attack_stack.base)
    try:
        sock.sendall(_submit_head(100) + b'{"kind": "')
        sent = time.monotonic()
        response = _read_response(sock, timeout=BODY_TIMEOUT + 10)
        seconds = time.monotonic() - sent
    finally:
        sock.close()
    print(f"ATTACK slow-body: {response.status} {seconds:.2f} s after 10 of 100 body bytes")
    assert response.status == 408, response
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["error"]["code"] == "request_timeout"
    assert BODY_TIMEOUT - EARLY <= seconds < BODY_TIMEOUT + LATE


def test_client_gone_mid_body_is_not_an_internal_error(attack_stack: Stack) -> None:
    """A client that hangs up mid-body, or sends a broken chunk, did nothing the gateway
    got wrong: no "http internal error" with a traceback (a log line any peer could make
    the gateway write at will), no 500."""
    proc = attack_stack.gateways[0][0]
    offset = _log_size(proc)
    with _connect(attack_stack.base) as sock:
        sock.sendall(_submit_head(100) + b'{"kind": "')
        time.sleep(0.3)
    with _connect(attack_stack.base) as sock:
        head = _submit_head(0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked")
        sock.sendall(head + b'a\r\n{"kind": "\r\nzz\r\n')
        broken_chunk, _ = _read_until_closed(sock, 10)
    time.sleep(BODY_TIMEOUT + 0.5)
    log = _log_since(proc, offset)
    print(f"ATTACK client-gone-mid-body: broken chunk answered {_status_of(broken_chunk)}")
    assert _status_of(broken_chunk) in (400, None), broken_chunk
    internal_errors = [line for line in log.splitlines() if "http internal error" in line or "Exception" in line]
    assert not internal_errors and "Traceback" not in log, "\n".join(internal_errors)


@pytest.mark.parametrize(
    "request_bytes",
    [
        _submit_head("abc") + b"{}",
        _submit_head(-1) + b"{}",
        _submit_head("²") + b"{}",
        _submit_head(10**30) + b"{}",
        _submit_head("5, 5") + b"{}",
        _submit_head(0).replace(b"Content-Length: 0", b"Transfer-Encoding: chunked") + b"zz\r\n",
        b"GARBAGE\r\n\r\n",
    ],
    ids=["non-numeric", "negative", "unicode-digit", "huge", "list", "bad-chunk", "no-request-line"],
)
def test_unparseable_request_gets_a_json_400(attack_stack: Stack, request_bytes: bytes) -> None:
    """A request the HTTP parser refuses gets the same JSON error body as every other
    refusal (the 408 and 431 of the guarded protocol, the app's own errors)."""
    with _connect(attack_stack.base) as sock:
        sock.sendall(request_bytes)
        data, ended = _read_until_closed(sock, 10)
    head = data.partition(b"\r\n")[0].decode("latin-1")
    print(f"ATTACK unparseable {request_bytes[:160]!r}: {head}, closed {ended}")
    assert _status_of(data) == 400, data
    assert ended
    assert isinstance(_json_error(data)["code"], str), data


# -- 5. password guessing ---------------------------------------------------------------------


def test_failed_auth_is_throttled_per_address(tmp_path: Path) -> None:
    limit, attempts = 5, 200
    with running_stack(
        f"sqlite:///{tmp_path}/g.sqlite3", LOG_DIR / "throttle", gateways=1, GATEWAY_AUTH_FAILURES_PER_MINUTE=str(limit)
    ) as stack:
        proc = stack.gateways[0][0]
        offset = _log_size(proc)
        wrong = {"Authorization": f"Bearer {WRONG_TOKEN}"}
        responses = []
        with httpx.Client(base_url=stack.base, timeout=10) as client:
            started = time.monotonic()
            for _ in range(limit):
                responses.append(client.get("/v1/tasks/x", headers=wrong))
            throttled_from = time.monotonic()
            for _ in range(attempts - limit):
                responses.append(client.get("/v1/tasks/x", headers=wrong))
            ended = time.monotonic()
            right = client.get("/v1/tasks/x", headers={"Authorization": f"Bearer {GOOD_TOKEN}"})
        attack_log = _log_since(proc, offset)

        ws_wrong = RawWebSocket(stack.base, WRONG_TOKEN)
        ws_wrong_code = ws_wrong.close_code()
        ws_wrong.close()
        ws_right = RawWebSocket(stack.base, GOOD_TOKEN)
        ws_right_code = ws_right.close_code()
        ws_right.close()
        time.sleep(0.3)
        whole_log = proc.log_path.read_text(errors="replace")

    rate = (attempts - limit) / (ended - throttled_from)
    print(
        f"ATTACK auth-guessing: {attempts} wrong tokens in {ended - started:.2f} s; "
        f"{limit} x 401 then {attempts - limit} x 429 at {rate:.0f} requests/s; "
        f"right token then {right.status_code}; WebSocket closes {ws_wrong_code}/{ws_right_code}; "
        f"{len(attack_log.splitlines())} log lines for the {attempts} attempts"
    )
    for response in responses[:limit]:
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "unauthenticated"
    for response in [*responses[limit:], right]:
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= 60
    assert (ws_wrong.status, ws_wrong_code) == (101, 4029)
    assert (ws_right.status, ws_right_code) == (101, 4029)
    assert "auth throttled peer=127.0.0.1" in attack_log
    auth_lines = [line for line in attack_log.splitlines() if re.search(r"auth (failed|throttled) peer=", line)]
    assert len(auth_lines) <= limit + 1, auth_lines
    assert len(attack_log.splitlines()) <= limit + 5, attack_log
    assert WRONG_TOKEN not in whole_log and "SECRET123" not in whole_log
    assert GOOD_TOKEN not in whole_log


# -- 6. random bytes where headers, bodies and queries go ------------------------------------

_ASCII = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
#: Bytes h11 will put in a header value as they are: visible ASCII, obs-text, inner spaces.
_LATIN1 = st.binary(max_size=40).map(lambda raw: bytes(b for b in raw if 0x21 <= b <= 0x7E or b >= 0x80))
_HEADER_VALUE = st.one_of(_ASCII.map(lambda text: text.strip().encode()), _LATIN1)
_UNICODE_DIGITS = st.text(alphabet="0123456789²³¹①٣٤൬௫߂᠓𝟙", min_size=1, max_size=12)

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
_JSON = st.recursive(
    _SCALARS,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=25,
)


def _encode(value: Any, ascii_only: bool) -> bytes:
    return json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", errors="surrogatepass")


_JSON_BODY = st.builds(_encode, _JSON, st.booleans())
_SUBMISSION = st.builds(
    _encode,
    st.fixed_dictionaries(
        {
            "kind": st.one_of(st.sampled_from(["sale.order.create", "inventory.adjust"]), st.text(max_size=70)),
            "payload": st.one_of(st.just(SALE), st.dictionaries(st.text(max_size=12), _JSON, max_size=5), _JSON),
        },
        optional={"extra": _JSON},
    ),
    st.booleans(),
)
#: Numbers JSON allows but Python's int() or the JSON encoder of the answer may not.
_NUMBER_TEXT = st.one_of(
    st.integers(4000, 20000).map(lambda digits: "9" * digits),
    st.just("1" + "0" * 5000),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-0", "1E-400", "0.1e99999"]),
    _UNICODE_DIGITS,
)


def _submission_around(number: str) -> bytes:
    return (
        '{"kind": "sale.order.create", "payload": {"customer": "C", '
        f'"lines": [{{"product": "DEMO-001", "quantity": {number}}}], "n": {number}}}}}'
    ).encode()


_BODY = st.one_of(
    st.binary(max_size=3000),
    _JSON_BODY,
    _SUBMISSION,
    _NUMBER_TEXT.map(str.encode),
    _NUMBER_TEXT.map(_submission_around),
    st.integers(1, 200_000).map(lambda depth: b"[" * depth + b"]" * depth),
    st.just(json.dumps({"kind": "sale.order.create", "payload": SALE}).encode()),
    st.just(json.dumps({"kind": "sale.order.create", "payload": SALE}).encode()),
)
_CONTENT_TYPE = st.one_of(
    st.just(b"application/json"),
    st.sampled_from(
        [
            b"application/json",
            b"application/json; charset=utf-8",
            b"application/json; charset=latin-1",
            b"text/plain",
            b"application/x-www-form-urlencoded",
            b"multipart/form-data; boundary=x",
            b"",
        ]
    ),
    _HEADER_VALUE,
)
_GOOD_AUTH = f"Bearer {GOOD_TOKEN}".encode()
#: Mostly the right token, so most examples get past authentication to the body.
_AUTHORIZATION = st.one_of(
    st.just(_GOOD_AUTH),
    st.just(_GOOD_AUTH),
    st.just(_GOOD_AUTH),
    st.just(_GOOD_AUTH),
    st.just(f"bearer   {GOOD_TOKEN}".encode()),
    st.just(f"Bearer {TOKENS['other']}".encode()),
    _HEADER_VALUE,
    _HEADER_VALUE.map(lambda value: (b"Bearer " + value).strip()),
)
_FRESH_KEY = st.builds(lambda: str(uuid.uuid4()).encode())
_IDEMPOTENCY_KEY = st.one_of(_FRESH_KEY, _FRESH_KEY, _FRESH_KEY, _HEADER_VALUE, st.just(b'"quoted"'))
#: What a Content-Length may say; the fitting length is added where a body is known.
_CONTENT_LENGTH = st.one_of(
    st.sampled_from([b"-1", b"-0", b"abc", b"1e3", b"0x10", b"+5", b"5, 5", b"\xc2\xb2", b"\xb2", b"\xd9\xa3"]),
    st.integers(2 * MiB, 10**30).map(lambda n: str(n).encode()),
    _UNICODE_DIGITS.map(lambda text: text.encode()),
    _HEADER_VALUE,
)
_AFTER = st.one_of(
    st.text(max_size=30),
    _UNICODE_DIGITS,
    st.integers().map(str),
    st.sampled_from(["", "0", "-1", "1e3", "٣", "²", "9" * 9, "9" * 10, "9" * 5000, " 1", "1 ", "0x1"]),
)


@dataclass
class _Answer:
    request: str
    status: int
    content_type: str
    body: bytes
    #: Sent with a Content-Length that fits the body (so no byte of it can be read as a head).
    framed: bool = True


@dataclass
class _Findings:
    answers: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def check(self, answer: _Answer) -> None:
        self.answers += 1
        self.statuses[answer.status] = self.statuses.get(answer.status, 0) + 1
        problem = None
        if answer.status == 0:
            problem = "no answer"
        elif answer.status >= 500:
            problem = "a 5xx"
        elif answer.status == 431 and answer.framed:  # every head sent here is far under the bound
            problem = "a 431 for a small head"
        elif answer.status >= 400:
            try:
                code = json.loads(answer.body)["error"]["code"]
                problem = None if isinstance(code, str) else "error.code is not a string"
            except (ValueError, KeyError, TypeError):
                problem = "an error that is not JSON {'error': {'code': ...}}"
            if not answer.content_type.startswith("application/json"):
                problem = problem or f"an error with content-type {answer.content_type!r}"
        if problem is not None and len(self.problems) < 400:
            self.problems.append(f"{problem}: {answer.request} -> {answer.status} {answer.body[:300]!r}")


def _raw_exchange(base: str, request: bytes) -> _Answer:
    """Send ``request`` while reading, so an early answer (413, 400) is read before the
    reset that the unread rest of the request may cause; then read that one answer."""
    received = b""
    with _connect(base) as sock:
        sock.setblocking(False)
        rest = memoryview(request)
        deadline = time.monotonic() + 15
        while rest and b"\r\n\r\n" not in received and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 0.5)
            if readable:
                try:
                    chunk = sock.recv(65536)
                except OSError:
                    break
                received += chunk
                if not chunk:
                    break
            if writable:
                try:
                    rest = rest[sock.send(rest[:65536]) :]
                except BlockingIOError:
                    pass
                except OSError:
                    break
        sock.setblocking(True)
        try:
            response = _read_response(sock, timeout=10, buffered=received)
        except OSError as exc:
            return _Answer(repr(request[:400]), 0, "", f"no answer: {exc}; read {received[:200]!r}".encode(), False)
    return _Answer(repr(request[:400]), response.status, response.headers.get("content-type", ""), response.body, False)


def test_random_http_input_never_gets_a_5xx_or_a_non_json_error(attack_stack: Stack) -> None:
    proc = attack_stack.gateways[0][0]
    offset = _log_size(proc)
    findings = _Findings()
    with httpx.Client(base_url=attack_stack.base, timeout=10) as client:
        created = client.post(
            "/v1/tasks",
            json={"kind": "sale.order.create", "payload": SALE},
            headers={"Authorization": f"Bearer {GOOD_TOKEN}", "Idempotency-Key": str(uuid.uuid4())},
        )
        assert created.status_code == 202, created.text
        task_id = created.json()["task_id"]

        def via_httpx(method: str, url: str, headers: dict[str, bytes], **kwargs: Any) -> None:
            as_bytes = {name.encode(): value for name, value in headers.items()}
            response = client.request(method, url, headers=as_bytes, **kwargs)
            described = f"{method} {url} headers={headers!r} params={kwargs.get('params')!r}"
            if "content" in kwargs:
                described += f" body={kwargs['content'][:300]!r}"
            answer = _Answer(
                described, response.status_code, response.headers.get("content-type", ""), response.content
            )
            findings.check(answer)

        @given(data=st.data())
        @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
        def exercise(data: st.DataObject) -> None:
            target = data.draw(st.sampled_from(["submit", "submit", "submit", "raw-length", "events", "task"]))
            headers = {"Authorization": data.draw(_AUTHORIZATION)}
            if target in ("submit", "raw-length"):
                headers["Idempotency-Key"] = data.draw(_IDEMPOTENCY_KEY)
                headers["Content-Type"] = data.draw(_CONTENT_TYPE)
                body = data.draw(_BODY)
                if target == "submit":
                    via_httpx("POST", "/v1/tasks", headers, content=body)
                    return
                length = data.draw(_CONTENT_LENGTH)
                head = b"".join(b"%s: %s\r\n" % (name.encode(), value) for name, value in headers.items())
                request = (
                    b"POST /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                    + head
                    + b"Content-Length: "
                    + length
                    + b"\r\n\r\n"
                    + body
                )
                findings.check(_raw_exchange(attack_stack.base, request))
            elif target == "events":
                after = data.draw(_AFTER)
                via_httpx("GET", f"/v1/tasks/{task_id}/events", headers, params={"after": after})
            else:
                some_id = data.draw(st.one_of(st.just(task_id), st.text(min_size=1, max_size=40)))
                via_httpx("GET", f"/v1/tasks/{quote(some_id, safe='')}", headers)

        exercise()
    time.sleep(0.5)
    internal_errors = [line for line in _log_since(proc, offset).splitlines() if "http internal error" in line]
    print(
        f"ATTACK random-http-input: {findings.answers} answers, statuses {dict(sorted(findings.statuses.items()))}, "
        f"{len(findings.problems)} problems, {len(internal_errors)} internal errors logged"
    )
    for problem in findings.problems[:10]:
        print(f"ATTACK random-http-input problem: {problem}")
    assert findings.answers >= 300
    serious = [p for p in findings.problems if p.startswith(("a 5xx", "no answer", "a 431"))]
    assert not serious, "\n".join(serious[:20])
    assert not internal_errors, "\n".join(internal_errors[:20])
    assert not findings.problems, "\n".join(findings.problems[:20])
