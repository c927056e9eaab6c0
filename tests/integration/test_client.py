"""The Python client against the real running system (gateways, worker, RabbitMQ, PostgreSQL,
Odoo stand-in), with its links broken for real by a TCP proxy and its process killed."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from odoo_gateway_client import (
    AuthenticationError,
    FinalState,
    GatewayClient,
    Outbox,
    SubmissionRejected,
    SyncClient,
    TaskHandle,
    TaskNotFound,
)
from tests.odoo_standin import FaultRule
from tests.support.processes import ROOT, free_port
from tests.support.proxy import FaultProxy
from tests.support.stack import TOKENS, Stack, wait_for

pytestmark = pytest.mark.integration

SALE = {"customer": "Demo Customer", "lines": [{"product": "DEMO-001", "quantity": 2}]}
INVENTORY = {"location": "WH/Stock", "lines": [{"product": "DEMO-001", "quantity": 12}]}
TOKEN = TOKENS["demo"]
# Test-speed settings: short backoff, quick detection of a dead link (keepalive pings).
FAST: dict[str, Any] = {
    "backoff_base": 0.05,
    "backoff_cap": 0.5,
    "open_timeout": 2.0,
    "ping_interval": 0.5,
    "ping_timeout": 1.0,
    "poll_interval": 0.2,
}


def sale_creates(stack: Stack, task_id: str) -> int:
    """Committed ``sale.order.create`` calls that carry this task's reference."""
    ref = json.dumps(f"GW-{task_id}")
    return sum(ref in json.dumps(e.values) for e in stack.standin.effects(model="sale.order", method="create"))


def orders_by_ref(stack: Stack) -> Counter[str]:
    return Counter(str(r.get("client_order_ref")) for r in stack.standin.records("sale.order"))


def assert_applied_once(stack: Stack, task_ids: list[str]) -> None:
    orders = orders_by_ref(stack)
    counts = {t: (orders[f"GW-{t}"], sale_creates(stack, t)) for t in task_ids}
    assert all(c == (1, 1) for c in counts.values()), {t: c for t, c in counts.items() if c != (1, 1)}


async def results(handles: list[TaskHandle], timeout: float) -> list[FinalState]:
    return await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), timeout)


@pytest.fixture
def proxy(pg_stack: Stack) -> Iterator[FaultProxy]:
    url = httpx.URL(pg_stack.base)
    assert url.host and url.port
    with FaultProxy(url.host, url.port) as running:
        yield running


# -- 1. the plain path ------------------------------------------------------------------------


async def test_submit_over_websocket_succeeds_and_applies_once(pg_stack: Stack, tmp_path: Path) -> None:
    stack = pg_stack
    outbox_path = tmp_path / "outbox.sqlite3"
    creates_before = len(stack.standin.effects(model="sale.order", method="create"))
    applies_before = len(stack.standin.effects(model="stock.quant", method="action_apply_inventory"))
    async with GatewayClient(stack.base, TOKEN, outbox_path, **FAST) as client:
        sale = await client.submit("sale.order.create", SALE)
        # Durable before anything else: another reader of the file already sees the submission.
        with Outbox(outbox_path) as reader:
            row = reader.by_key(str(sale.key))
        assert row is not None and (row.kind, row.payload) == ("sale.order.create", SALE)
        inventory = await client.submit("inventory.adjust", INVENTORY)

        async def all_events() -> list[Any]:
            return [event async for event in inventory.events()]

        inventory_events = await asyncio.wait_for(all_events(), 60)
        sale_id = await asyncio.wait_for(sale.accepted(), 30)
        state = await asyncio.wait_for(sale.result(), 60)
        assert client.transport == "ws" and client.connections >= 1
        assert client.entries() == []  # both endings were shown, so both rows left the outbox

    assert state.succeeded and state.task_id == sale_id and state.result is not None
    assert state.result["sale_order_id"] > 0 and state.seq >= 2
    assert stack.task(sale_id)["status"] == "succeeded"
    seqs = [e.seq for e in inventory_events]
    assert seqs == sorted(set(seqs)) and seqs[0] >= 1
    assert inventory_events[-1].status == "succeeded" and inventory_events[-1].final
    assert all(not e.final for e in inventory_events[:-1])

    creates = stack.standin.effects(model="sale.order", method="create")
    assert len(creates) == creates_before + 1
    assert sale_creates(stack, sale_id) == 1
    applies = stack.standin.effects(model="stock.quant", method="action_apply_inventory")
    assert len(applies) == applies_before + 1
    assert applies[-1].context.get("inventory_name") == f"GW-{inventory_events[-1].task_id}"


async def test_a_rejected_submission_fails_its_handle_and_leaves_the_outbox(pg_stack: Stack, tmp_path: Path) -> None:
    async with GatewayClient(pg_stack.base, TOKEN, tmp_path / "outbox.sqlite3", **FAST) as client:
        bad = await client.submit("sale.order.create", {"customer": "Demo Customer", "lines": []})
        with pytest.raises(SubmissionRejected) as caught:
            await asyncio.wait_for(bad.accepted(), 30)
        assert caught.value.code == "validation_failed"
        assert any("lines" in d["loc"] for d in caught.value.details)
        assert client.entries() == []


async def test_a_refused_token_stops_the_client_without_reconnecting(
    pg_stack: Stack, proxy: FaultProxy, tmp_path: Path
) -> None:
    async with GatewayClient(proxy.http_url, "not-a-token", tmp_path / "o.sqlite3", **FAST) as client:
        handle = await client.submit("sale.order.create", SALE)
        with pytest.raises(AuthenticationError, match="4001"):
            await asyncio.wait_for(handle.accepted(), 30)
        assert isinstance(client.stopped_error, AuthenticationError)
        assert client.connections == 1 and proxy.stats.accepted == 1  # one try, no reconnect loop
        with pytest.raises(AuthenticationError):
            await client.submit("sale.order.create", SALE)
        # Refused before the gateway read a frame: provably never sent, so it can be dropped.
        assert await client.withdraw(handle)
        assert client.entries() == []


async def test_unknown_and_foreign_tasks_are_reported_as_not_found(pg_stack: Stack, tmp_path: Path) -> None:
    foreign = httpx.post(
        f"{pg_stack.base}/v1/tasks",
        json={"kind": "sale.order.create", "payload": SALE},
        headers=pg_stack.headers("other", key=str(uuid.uuid4())),
        timeout=10,
    )
    assert foreign.status_code == 202
    foreign_id = foreign.json()["task_id"]
    async with GatewayClient(pg_stack.base, TOKEN, tmp_path / "o.sqlite3", **FAST) as client:
        for task_id in (str(uuid.uuid4()), foreign_id):
            handle = client.handle_for(task_id)
            with pytest.raises(TaskNotFound):
                await asyncio.wait_for(handle.result(), 30)
        assert client.entries() == []
    # Let it end, so no task is still running into the next test's effect counts.
    wait_for(lambda: pg_stack.task(foreign_id, "other")["status"] == "succeeded", 60, "the foreign task")


# -- 2. connections cut mid-submit and mid-wait -------------------------------------------------


async def test_cuts_mid_submit_and_mid_wait_lose_nothing_and_apply_each_task_once(
    pg_stack: Stack, proxy: FaultProxy, tmp_path: Path
) -> None:
    stack = pg_stack
    # Each Odoo create takes a while, so tasks are still running while the links are being cut.
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=0.4, times=20))
    proxy.set_latency(0.03)  # frames spend time in flight, where a cut catches them
    orders_before = sum(orders_by_ref(stack).values())
    handles: list[TaskHandle] = []
    cuts = {"mid_submit": 0, "mid_wait": 0}
    cuts_done: list[int] = []
    stop = asyncio.Event()

    gateways = [httpx.URL(base) for _, base in stack.gateways]
    assert len(gateways) == 2

    async def chaos() -> None:
        while not stop.is_set():
            await asyncio.sleep(random.uniform(0.15, 0.45))
            unacked = any(h.task_id is None for h in handles)
            running = any(h.task_id is not None and not h.settled for h in handles)
            # Each reconnect lands on the other gateway instance: resume must work on any of them.
            target = gateways[len(cuts_done) % 2]
            proxy.set_target(str(target.host), int(target.port or 0))
            cut = await asyncio.to_thread(proxy.cut)
            cuts_done.append(cut)
            if cut:
                cuts["mid_submit"] += unacked
                cuts["mid_wait"] += running

    options = {**FAST, "ws_failures_before_http": 1000}  # stay on WebSockets throughout
    async with GatewayClient(proxy.http_url, TOKEN, tmp_path / "outbox.sqlite3", **options) as client:
        chaos_task = asyncio.create_task(chaos())
        try:
            for _ in range(20):
                handles.append(await client.submit("sale.order.create", SALE))
                await asyncio.sleep(0.05)  # pacing: submissions spread over several connections
            finals = await results(handles, 150)
        finally:
            stop.set()
            await chaos_task
        assert client.entries() == []

    assert cuts["mid_submit"] >= 1 and cuts["mid_wait"] >= 1, cuts
    assert client.connections >= 4  # it really reconnected, several times
    assert proxy.stats.accepted >= 4
    assert [f.status for f in finals] == ["succeeded"] * 20
    task_ids = [f.task_id for f in finals]
    assert len(set(task_ids)) == 20  # no submission lost or merged with another
    assert_applied_once(stack, task_ids)
    assert sum(orders_by_ref(stack).values()) == orders_before + 20


# -- 3. the client process killed and restarted -------------------------------------------------

CLIENT_SCRIPT = r"""
import asyncio, json, sys
from odoo_gateway_client import GatewayClient

async def main() -> None:
    url, token, outbox, count, mode = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    options = dict(backoff_base=0.05, backoff_cap=0.5, open_timeout=2.0, ping_interval=5.0,
                   ping_timeout=5.0, ws_failures_before_http=1000)
    async with GatewayClient(url, token, outbox, **options) as client:
        if mode == "after-go":
            await client.wait_connected()
            print("connected", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
        handles = client.pending()
        for _ in range(count):
            handles.append(await client.submit("sale.order.create", json.loads(sys.argv[6])))
        print(json.dumps({"submitted": [h.key for h in handles]}), flush=True)
        finals = [await h.result() for h in handles]
        report = [[h.key, f.task_id, f.status] for h, f in zip(handles, finals)]
        print(json.dumps({"final": report}), flush=True)

asyncio.run(main())
"""


class ClientProcess:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    @classmethod
    async def start(cls, url: str, outbox: Path, count: int, mode: str) -> ClientProcess:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CLIENT_SCRIPT,
            url,
            TOKEN,
            str(outbox),
            str(count),
            mode,
            json.dumps(SALE),
            cwd=ROOT,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self, timeout: float = 30.0) -> str:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        assert raw, f"client process ended early (rc={self.proc.returncode})"
        return raw.decode().strip()

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode() + b"\n")

    async def sigkill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        assert await self.proc.wait() == -signal.SIGKILL


async def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_killed_client_resends_and_resumes_after_restart(
    pg_stack: Stack, proxy: FaultProxy, tmp_path: Path
) -> None:
    stack = pg_stack
    outbox = tmp_path / "device-outbox.sqlite3"
    orders_before = sum(orders_by_ref(stack).values())

    def new_orders() -> int:
        return sum(orders_by_ref(stack).values()) - orders_before

    # A: the network is gone; three submissions are written to the outbox, then the process dies.
    proxy.blackhole(True)
    first = await ClientProcess.start(proxy.http_url, outbox, 3, "now")
    submitted_a = json.loads(await first.line())["submitted"]
    with Outbox(outbox) as reader:
        assert [(e.key, e.status) for e in reader.entries()] == [(k, "pending") for k in submitted_a]
    await first.sigkill()
    assert new_orders() == 0

    # B: restarted on a link that delivers requests but loses every answer: A's three are resent
    # and three more submitted; the gateway accepts and applies all six, no answer gets back, and
    # the process dies again.
    proxy.blackhole(False)
    second = await ClientProcess.start(proxy.http_url, outbox, 3, "after-go")
    assert await second.line() == "connected"
    proxy.blackhole(True, "to_client")
    second.send("go")
    submitted_b = json.loads(await second.line())["submitted"]
    assert submitted_b[:3] == submitted_a and len(submitted_b) == 6
    await wait_until(lambda: new_orders() >= 6, 60, "the gateway to apply all six submissions")
    await second.sigkill()
    with Outbox(outbox) as reader:
        status = {e.key: e.status for e in reader.entries()}
    assert [status[k] for k in submitted_b[3:]] == ["pending"] * 3  # applied, yet never acknowledged

    # C: restarted on a healthy link with the same outbox: same keys resent, tasks resumed.
    proxy.blackhole(False)
    third = await ClientProcess.start(proxy.http_url, outbox, 0, "now")
    assert json.loads(await third.line())["submitted"] == submitted_b
    finals = json.loads(await third.line(90))["final"]
    assert await third.proc.wait() == 0

    assert [key for key, _, _ in finals] == submitted_b
    assert [status for _, _, status in finals] == ["succeeded"] * 6
    task_ids = [task_id for _, task_id, _ in finals]
    assert len(set(task_ids)) == 6
    assert_applied_once(stack, task_ids)
    assert new_orders() == 6
    with Outbox(outbox) as reader:
        assert reader.entries() == []


# -- 4. HTTP polling when WebSockets are unavailable --------------------------------------------


async def test_http_polling_when_preferred(pg_stack: Stack, tmp_path: Path) -> None:
    async with GatewayClient(pg_stack.base, TOKEN, tmp_path / "o.sqlite3", prefer_http=True, **FAST) as client:
        handle = await client.submit("sale.order.create", SALE)

        async def all_events() -> list[Any]:
            return [event async for event in handle.events()]

        events = await asyncio.wait_for(all_events(), 60)
        assert client.transport == "http" and client.connections == 0  # no socket was ever opened
        assert client.entries() == []
    assert events[-1].status == "succeeded"
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert_applied_once(pg_stack, [events[-1].task_id])


async def test_http_fallback_when_the_websocket_port_refuses(pg_stack: Stack, tmp_path: Path) -> None:
    refusing = f"ws://127.0.0.1:{free_port()}/v1/ws"
    options = {**FAST, "ws_failures_before_http": 2}
    async with GatewayClient(pg_stack.base, TOKEN, tmp_path / "o.sqlite3", ws_url=refusing, **options) as client:
        handles = [await client.submit("sale.order.create", SALE) for _ in range(2)]
        finals = await results(handles, 60)
        assert client.transport == "http" and client.connections == 0
        assert client.last_error is not None
    assert [f.status for f in finals] == ["succeeded", "succeeded"]
    assert_applied_once(pg_stack, [f.task_id for f in finals])


# -- the synchronous wrapper ---------------------------------------------------------------------


def test_sync_client_submits_and_waits(pg_stack: Stack, tmp_path: Path) -> None:
    with SyncClient(pg_stack.base, TOKEN, tmp_path / "o.sqlite3", **FAST) as client:
        task_id = client.submit("sale.order.create", SALE, timeout=30)
        state = client.wait(task_id, timeout=60)
        assert client.pending() == []
    assert (state.task_id, state.status) == (task_id, "succeeded")
    assert_applied_once(pg_stack, [task_id])


# -- 5. the command line -----------------------------------------------------------------------

GWCTL = str(Path(sys.executable).parent / "gwctl")


def gwctl(
    *args: str, url: str, outbox: Path, token: str = TOKEN, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GATEWAY_URL": url, "GATEWAY_TOKEN": token, "GWCTL_OUTBOX": str(outbox)}
    return subprocess.run([GWCTL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gwctl: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_cli_submit_wait_outbox_status_and_watch(pg_stack: Stack, tmp_path: Path) -> None:
    outbox = tmp_path / "cli.sqlite3"
    payload = json.dumps(SALE)
    done = gwctl("submit", "sale.order.create", "--payload", payload, "--wait", url=pg_stack.base, outbox=outbox)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    task_id = lines[0]
    assert pg_stack.task(task_id)["status"] == "succeeded"  # the first line is the real task id
    assert "succeeded" in lines[-1] and "sale_order_id" in lines[-1]
    assert_applied_once(pg_stack, [task_id])

    listed = gwctl("outbox", url=pg_stack.base, outbox=outbox)
    assert listed.returncode == 0 and "outbox is empty" in listed.stdout
    with Outbox(outbox) as reader:
        assert reader.entries() == []

    status = gwctl("status", task_id, url=pg_stack.base, outbox=outbox)
    assert status.returncode == 0
    assert json.loads(status.stdout)["status"] == "succeeded"

    watched = gwctl("watch", task_id, url=pg_stack.base, outbox=outbox)
    assert watched.returncode == 0 and watched.stdout.strip().splitlines()[-1].startswith("[")
    assert "succeeded" in watched.stdout.strip().splitlines()[-1]

    polled = gwctl(
        "submit",
        "sale.order.create",
        "--payload",
        payload,
        "--wait",
        "--http",
        url=pg_stack.base,
        outbox=outbox,
    )
    assert polled.returncode == 0, polled.stderr
    assert polled.stdout.splitlines()[0] != task_id and "succeeded" in polled.stdout.splitlines()[-1]
    assert_applied_once(pg_stack, [task_id, polled.stdout.splitlines()[0]])

    payload_file = tmp_path / "inventory.json"
    payload_file.write_text(json.dumps(INVENTORY))
    queued = gwctl("submit", "inventory.adjust", "--file", str(payload_file), url=pg_stack.base, outbox=outbox)
    assert queued.returncode == 0, queued.stderr
    listed = gwctl("outbox", url=pg_stack.base, outbox=outbox)
    assert queued.stdout.strip() in listed.stdout  # followed until its ending is seen
    pg_stack.wait_final(queued.stdout.strip())


def test_cli_errors_are_one_line(pg_stack: Stack, tmp_path: Path) -> None:
    outbox = tmp_path / "cli.sqlite3"
    payload = json.dumps(SALE)
    bad_token = gwctl(
        "submit",
        "sale.order.create",
        "--payload",
        payload,
        "--wait",
        url=pg_stack.base,
        outbox=outbox,
        token="nope",
    )
    assert bad_token.returncode == 4
    assert_one_line_error(bad_token, "token", "nothing was submitted")
    with Outbox(outbox) as reader:
        assert reader.entries() == []

    unreachable = f"http://127.0.0.1:{free_port()}"
    down = gwctl(
        "submit",
        "sale.order.create",
        "--payload",
        payload,
        "--connect-timeout",
        "2",
        url=unreachable,
        outbox=outbox,
    )
    assert down.returncode == 3
    assert_one_line_error(down, "unreachable", unreachable, "nothing was submitted")

    not_json = gwctl("submit", "sale.order.create", "--payload", "{oops", url=pg_stack.base, outbox=outbox)
    assert not_json.returncode == 2
    assert_one_line_error(not_json, "invalid payload")

    invalid = json.dumps({"customer": "Demo Customer", "lines": []})
    rejected = gwctl("submit", "sale.order.create", "--payload", invalid, url=pg_stack.base, outbox=outbox)
    assert rejected.returncode == 2
    assert_one_line_error(rejected, "validation_failed", "lines")

    status = gwctl("status", "no-such-task", url=pg_stack.base, outbox=outbox, token="nope")
    assert status.returncode == 4
    assert_one_line_error(status, "token")
    with Outbox(outbox) as reader:
        assert reader.entries() == []


# -- the proxy itself: its faults must be real, or the tests above prove nothing ---------------


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


def test_the_proxy_resets_holds_delays_and_refuses_for_real() -> None:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with FaultProxy("127.0.0.1", server.server_address[1]) as proxy:
            sock = socket.create_connection(proxy.address, timeout=5)
            sock.sendall(b"hello")
            assert sock.recv(100) == b"hello"

            proxy.blackhole(True)
            sock.sendall(b"held")
            sock.settimeout(0.5)
            with pytest.raises(TimeoutError):
                sock.recv(100)
            proxy.blackhole(False)
            sock.settimeout(5)
            assert sock.recv(100) == b"held"  # held, not dropped

            proxy.set_latency(0.2)
            started = time.monotonic()
            sock.sendall(b"slow")
            assert sock.recv(100) == b"slow"
            assert time.monotonic() - started >= 0.4  # 0.2 s each way
            proxy.set_latency(0)

            assert proxy.cut() == 1
            with pytest.raises(ConnectionResetError):
                sock.sendall(b"after the cut")
                sock.recv(100)
            sock.close()

            proxy.refuse(True)
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(proxy.address, timeout=5)
            proxy.refuse(False)
            with socket.create_connection(proxy.address, timeout=5) as again:
                again.sendall(b"back")
                assert again.recv(100) == b"back"
            assert proxy.stats.cut == 1 and proxy.stats.accepted == 2
    finally:
        server.shutdown()
        server.server_close()


def test_proxy_bandwidth_cap_slows_a_transfer() -> None:
    """The chaos suite's slow link: 64 KB through a 32 KB/s cap takes about 2 s."""
    import socket
    import threading
    import time

    from tests.support.proxy import FaultProxy

    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            while chunk := conn.recv(65536):
                received.extend(chunk)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    with FaultProxy("127.0.0.1", server.getsockname()[1]) as proxy:
        proxy.set_bandwidth(32_000)
        started = time.monotonic()
        with socket.create_connection(proxy.address) as sock:
            sock.sendall(b"x" * 64_000)
        thread.join(timeout=10)
        elapsed = time.monotonic() - started
    server.close()
    assert len(received) == 64_000
    assert 1.5 <= elapsed <= 6.0
