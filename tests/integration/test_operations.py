"""What operators rely on, on running processes: metrics that move, JSON logs that parse,
a console that names things, a version, and a SIGTERM that loses nothing."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import pika
import websockets
from prometheus_client.parser import text_string_to_metric_families

from shared.names import EVENTS_EXCHANGE, TASK_ID_HEADER, TASK_QUEUE
from shared.version import VERSION
from tests.odoo_standin import FaultRule
from tests.support.processes import start_gateway, start_worker
from tests.support.services import queue_counts
from tests.support.stack import TOKENS, Stack, wait_for

from .test_roundtrip import SALE, orders_for

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=10)
    response.raise_for_status()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def metric(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def submit_sale(base: str, key: str | None = None) -> str:
    response = httpx.post(
        f"{base}/v1/tasks",
        headers=Stack.headers(key=key or str(uuid.uuid4())),
        json={"kind": "sale.order.create", "payload": SALE},
        timeout=30,
    )
    assert response.status_code == 202, response.text
    task_id: str = response.json()["task_id"]
    return task_id


def test_metrics_are_present_and_move_after_a_task(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    worker_metrics = f"http://127.0.0.1:{stack.env['WORKER_METRICS_PORT']}/metrics"
    before = scrape(f"{stack.base}/metrics")
    task_id = submit_sale(stack.base)
    assert stack.wait_final(task_id)["status"] == "succeeded"
    # The relay announces the final event right after the worker published it.
    wait_for(
        lambda: (
            metric(scrape(f"{stack.base}/metrics"), "gateway_events_relayed_total", status="succeeded")
            > metric(before, "gateway_events_relayed_total", status="succeeded")
        ),
        10,
        "the succeeded event to be counted",
    )
    after = scrape(f"{stack.base}/metrics")

    def moved(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert moved("gateway_submissions_total", transport="http", outcome="accepted") == 1
    assert moved("gateway_publish_confirm_seconds_count") == 1
    assert moved("gateway_store_seconds_count", operation="accept_batch") >= 1
    assert moved("gateway_events_relayed_total", status="running") >= 1
    assert moved("gateway_event_relay_seconds_count") >= 2
    assert metric(after, "gateway_build_info", version=VERSION) == 1
    assert ("gateway_ws_connections", ()) in after
    worker = wait_for(
        lambda: (
            (s := scrape(worker_metrics))
            and metric(s, "worker_tasks_finished_total", kind="sale.order.create", status="succeeded") >= 1
            and s
        ),
        15,
        "the worker's task counters",
    )
    assert metric(worker, "worker_task_events_total", status="running") >= 1
    assert metric(worker, "dramatiq_messages_total", queue_name="odoo_tasks", actor_name="apply_task") >= 1
    assert (
        metric(worker, "dramatiq_message_duration_milliseconds_count", queue_name="odoo_tasks", actor_name="apply_task")
        >= 1
    )


def test_version_is_on_healthz_and_in_openapi(sqlite_stack: Stack) -> None:
    health = httpx.get(f"{sqlite_stack.base}/healthz", timeout=10).json()
    document = httpx.get(f"{sqlite_stack.base}/openapi.json", timeout=10).json()
    assert health == {"status": "ok", "version": VERSION}
    assert document["info"]["version"] == VERSION and VERSION != "0+unknown"


def test_console_names_the_live_queue_and_events_name_their_task(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    vhost = unquote(urlsplit(stack.env["AMQP_URL"]).path.lstrip("/"))
    listed = subprocess.run(
        ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name", "exclusive"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    gateway_pid = stack.gateways[0][0].pid
    assert any(line.startswith("gateway.live.") and f".{gateway_pid}." in line for line in listed.splitlines())
    assert "amq.gen-" not in listed
    # A queue of our own on the events exchange sees what the console would show.
    connection = pika.BlockingConnection(pika.URLParameters(stack.env["AMQP_URL"]))
    try:
        channel = connection.channel()
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, EVENTS_EXCHANGE, routing_key="task.#")
        task_id = submit_sale(stack.base)
        stack.wait_final(task_id)
        seen: list[Any] = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(p.correlation_id == task_id for p in seen):
            method, properties, _body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                time.sleep(0.05)
            else:
                seen.append(properties)
        mine = [p for p in seen if p.correlation_id == task_id]
        assert mine and all(p.app_id == "worker" and p.headers[TASK_ID_HEADER] == task_id for p in mine)
    finally:
        connection.close()


async def test_json_logs_parse_one_object_per_line(sqlite_stack: Stack) -> None:
    stack = sqlite_stack
    env = {**stack.env, "LOG_FORMAT": "json"}
    proc, base = await asyncio.to_thread(start_gateway, env, stack.log_dir, name="gateway-json")
    try:
        headers = {"Authorization": f"Bearer {TOKENS['demo']}"}
        async with websockets.connect(base.replace("http", "ws") + "/v1/ws", additional_headers=headers) as ws:
            frame = {"type": "submit", "ref": "s", "idempotency_key": str(uuid.uuid4()), "kind": "sale.order.create"}
            await ws.send(json.dumps({**frame, "payload": SALE}))
            accepted = json.loads(await asyncio.wait_for(ws.recv(), 30))
            assert accepted["type"] == "accepted"
    finally:
        proc.stop()
    lines = [json.loads(line) for line in proc.log_path.read_text().splitlines() if line.strip()]
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    opened = [line for line in lines if line["message"].startswith("ws open")]
    closed = [line for line in lines if line["message"].startswith("ws close")]
    assert opened and closed and opened[0]["conn_id"] == closed[0]["conn_id"]
    assert any(line.get("task_id") == accepted["task_id"] for line in lines)
    assert not any(TOKENS["demo"] in line["message"] for line in lines)


def test_worker_processes_log_json_lines_at_the_configured_level(sqlite_stack: Stack) -> None:
    """Under the dramatiq CLI, which configures logging before importing our code."""
    stack = sqlite_stack

    def worker_log(**overrides: str) -> list[str]:
        env = {**stack.env, "WORKER_METRICS_PORT": "0", **overrides}
        worker = start_worker(env, stack.log_dir, threads=1, name="worker-logs")
        # The stack's own worker already consumes: wait for this one to consume too.
        wait_for(lambda: queue_counts(env["AMQP_URL"], TASK_QUEUE)[1] >= 2, 30, "the second worker")
        worker.stop()
        return worker.log_path.read_text().splitlines()

    lines = worker_log(LOG_FORMAT="json", LOG_LEVEL="INFO")
    ours = [json.loads(line) for line in lines if line.startswith("{")]
    assert any(line["logger"] == "workers.broker" and "event topology declared" in line["message"] for line in ours)
    # Only Dramatiq's master process (which never imports our code) writes other lines.
    assert all(
        "dramatiq.MainProcess" in line or "dramatiq.ForkProcess" in line for line in lines if not line.startswith("{")
    )
    # LOG_LEVEL=WARNING wins over the level Dramatiq set up first: no INFO line of ours.
    assert not any("event topology declared" in line for line in worker_log(LOG_LEVEL="WARNING"))


# --- graceful shutdown ---------------------------------------------------------------------


class _Client:
    """A device submitting one sale after another on one socket, remembering what it saw."""

    def __init__(self) -> None:
        self.accepted: dict[str, str] = {}  # idempotency key -> task id
        self.unanswered: list[str] = []  # keys sent with no answer before the socket closed
        self.events: dict[str, list[int]] = {}  # task id -> seqs seen, in order
        self.close_code: int | None = None
        self.open = True

    def note_event(self, frame: dict[str, Any]) -> None:
        self.events.setdefault(frame["task_id"], []).append(frame["seq"])

    async def run(self, url: str) -> None:
        headers = {"Authorization": f"Bearer {TOKENS['demo']}"}
        async with websockets.connect(url, additional_headers=headers) as ws:
            try:
                while True:
                    key = str(uuid.uuid4())
                    frame = {"type": "submit", "ref": key, "idempotency_key": key, "kind": "sale.order.create"}
                    self.unanswered.append(key)
                    await ws.send(json.dumps({**frame, "payload": SALE}))
                    while True:
                        reply = json.loads(await ws.recv())
                        if reply["type"] == "event":
                            self.note_event(reply)
                        elif reply.get("ref") == key:
                            assert reply["type"] == "accepted", reply
                            self.accepted[key] = reply["task_id"]
                            self.unanswered.remove(key)
                            break
                    await asyncio.sleep(0.05)
            except websockets.ConnectionClosed as closed:
                self.close_code = closed.rcvd.code if closed.rcvd is not None else None
            finally:
                self.open = False


async def _resume_until_final(url: str, tasks: dict[str, int], client: _Client) -> None:
    headers = {"Authorization": f"Bearer {TOKENS['demo']}"}
    async with websockets.connect(url, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "resume", "ref": "r", "tasks": tasks}))
        pending = set(tasks)
        while pending:
            frame = json.loads(await asyncio.wait_for(ws.recv(), 60))
            if frame["type"] == "resumed":
                assert frame["unknown"] == []
                # Already final and seen to the end: nothing more will come for these.
                pending -= {
                    t
                    for t, state in frame["tasks"].items()
                    if state["status"] in ("succeeded", "failed") and state["seq"] == tasks[t]
                }
            elif frame["type"] == "event":
                client.note_event(frame)
                if frame["status"] in ("succeeded", "failed"):
                    pending.discard(frame["task_id"])


async def test_graceful_shutdown_with_open_sockets_and_submissions_loses_nothing(pg_stack: Stack) -> None:
    stack = pg_stack
    # Odoo is slow, so tasks are still running when the gateway leaves.
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=0.2, times=-1))
    env = {**stack.env, "GATEWAY_SHUTDOWN_DRAIN_SECONDS": "1.5"}
    proc, base = await asyncio.to_thread(start_gateway, env, stack.log_dir, name="gateway-leaving")
    clients = [_Client() for _ in range(4)]
    runs = [asyncio.create_task(c.run(base.replace("http", "ws") + "/v1/ws")) for c in clients]
    try:
        async with httpx.AsyncClient(timeout=5) as http:
            while min(len(c.accepted) for c in clients) < 3:
                await asyncio.sleep(0.05)
            proc.popen.send_signal(signal.SIGTERM)  # the server process alone, as systemd or docker would
            ready = await http.get(f"{base}/readyz")
            while ready.status_code == 200:
                ready = await http.get(f"{base}/readyz")
            # Out of the balancer first: not ready, while the sockets are all still open.
            assert ready.status_code == 503 and ready.json()["checks"]["running"] is False
            assert all(c.open for c in clients)
        await asyncio.wait_for(asyncio.gather(*runs), 20)
        assert await asyncio.to_thread(proc.popen.wait, 20) is not None
    finally:
        stack.standin.clear_faults()
        for run in runs:
            run.cancel()
        proc.stop()
    assert [c.close_code for c in clients] == [1001] * len(clients)
    log = proc.log_path.read_text()
    assert "shutdown requested (SIGTERM)" in log and log.count("code=1001") >= len(clients)
    # Each device goes to the other gateway: unanswered submissions are sent again with
    # their keys, then everything is resumed from the last seq seen.
    other = stack.ws_of(0)
    for client in clients:
        for key in client.unanswered:
            client.accepted[key] = await asyncio.to_thread(submit_sale, stack.base, key)
        tasks = {task_id: (client.events.get(task_id) or [0])[-1] for task_id in client.accepted.values()}
        await _resume_until_final(other, tasks, client)
    async with httpx.AsyncClient(base_url=stack.base, timeout=30) as http:
        for client in clients:
            assert len(set(client.accepted.values())) == len(client.accepted)  # one task per key
            for task_id in client.accepted.values():
                history = (await http.get(f"/v1/tasks/{task_id}/events?after=0", headers=stack.headers())).json()
                seen = client.events[task_id]
                stored = [e["seq"] for e in history["events"]]
                assert seen == sorted(set(seen)), f"duplicate or out-of-order events for {task_id}: {seen}"
                assert set(seen) <= set(stored) and seen[-1] == stored[-1] == history["seq"]
                # What the client did not get pushed is an intermediate event (running) that
                # a gateway stored after the worker had stored the final one: it joined the
                # history late (the stopping gateway held it unacknowledged); a socket that
                # has the final never goes back. Nothing final or newer is ever missed.
                assert all(seq < seen[-1] for seq in set(stored) - set(seen)), (seen, stored)
                assert history["status"] == "succeeded"
                assert len(orders_for(stack, task_id)) == 1


def test_metrics_of_several_gateway_processes_are_summed(sqlite_stack: Stack, tmp_path: Any) -> None:
    """GATEWAY_WORKERS=2 on one port: with PROMETHEUS_MULTIPROC_DIR every scrape, whichever
    process answers it, counts the submissions both processes took."""
    stack = sqlite_stack
    env = {**stack.env, "GATEWAY_WORKERS": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")}
    (tmp_path / "prom").mkdir()
    (tmp_path / "prom" / "counter_999999999.db").write_bytes(b"")  # a previous run's: removed at start
    proc, base = start_gateway(env, stack.log_dir, name="gateway-2proc")
    try:
        for _ in range(6):
            with httpx.Client(base_url=base, timeout=30) as http:  # a new connection: any process
                response = http.post(
                    "/v1/tasks",
                    headers=Stack.headers(key=str(uuid.uuid4())),
                    json={"kind": "sale.order.create", "payload": SALE},
                )
                assert response.status_code == 202
        counts = {
            metric(scrape(f"{base}/metrics"), "gateway_submissions_total", transport="http", outcome="accepted")
            for _ in range(6)
        }
        assert counts == {6.0}
        assert not (tmp_path / "prom" / "counter_999999999.db").exists()
    finally:
        proc.stop()


def test_a_stopping_worker_finishes_its_running_task(sqlite_stack: Stack) -> None:
    """SIGTERM to the Dramatiq master alone (as docker and the unit's KillMode=mixed send it):
    the task under way finishes before the worker exits, once."""
    stack = sqlite_stack
    stack.standin.add_fault(FaultRule(kind="delay", model="sale.order", method="create", seconds=2.0))
    try:
        task_id = submit_sale(stack.base)
        wait_for(lambda: stack.task(task_id)["status"] == "running", 15, "the task to start")
        stack.worker.popen.send_signal(signal.SIGTERM)
        assert stack.worker.popen.wait(30) == 0
        assert stack.task(task_id)["status"] == "succeeded"  # finished before the worker left
        assert len(orders_for(stack, task_id)) == 1
    finally:
        stack.standin.clear_faults()
        stack.restart_worker()
