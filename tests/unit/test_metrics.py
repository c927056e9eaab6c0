"""The gateway's metrics seam: each hook moves its metric, and /metrics renders them."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from gateway import metrics
from gateway.registry import SessionRegistry
from odoo_gateway_wire.close_codes import CloseCode
from odoo_gateway_wire.statuses import TaskStatus
from shared.events import TaskEvent
from shared.version import VERSION
from tests.unit.test_registry import FakeSession


def samples() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, content_type = metrics.exposition()
    assert content_type.startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


def value(name: str, **labels: str) -> float:
    return samples().get((name, tuple(sorted(labels.items()))), 0.0)


def test_hooks_move_their_metrics() -> None:
    before = samples()
    metrics.submission("ws", "accepted")
    metrics.publish_confirmed(0.004)
    metrics.store_call("get", 0.001)
    metrics.event_relayed("succeeded", 0.2)
    metrics.anomaly("forged_event")
    metrics.socket_closed(1001)
    after = samples()

    def moved(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert moved("gateway_submissions_total", transport="ws", outcome="accepted") == 1
    assert moved("gateway_publish_confirm_seconds_count") == 1
    assert moved("gateway_store_seconds_count", operation="get") == 1
    assert moved("gateway_events_relayed_total", status="succeeded") == 1
    assert moved("gateway_event_relay_seconds_count") == 1
    assert moved("gateway_anomalies_total", kind="forged_event") == 1
    assert moved("gateway_ws_closes_total", code="1001") == 1
    assert after[("gateway_build_info", (("version", VERSION),))] == 1


def test_registry_reports_sockets_watches_and_frames() -> None:
    registry = SessionRegistry()
    sockets, watches, frames = (
        value("gateway_ws_connections"),
        value("gateway_ws_watches"),
        value("gateway_event_frames_total"),
    )
    a, b = FakeSession("m-a"), FakeSession("m-b")
    registry.attach(a)
    registry.attach(b)
    registry.watch("m-a", [("t1", 0), ("t2", 0)])
    registry.watch("m-b", [("t1", 0)])
    for session_id in ("m-a", "m-b"):
        for task_id in ("t1", "t2"):
            registry.finish_sync(session_id, task_id, [])
    assert value("gateway_ws_connections") - sockets == 2
    assert value("gateway_ws_watches") - watches == 3
    registry.deliver(TaskEvent(task_id="t1", seq=2, status=TaskStatus.RUNNING, attempt=1))
    assert value("gateway_event_frames_total") - frames == 2
    registry.close("m-a", CloseCode.GOING_AWAY, "bye")
    registry.detach("m-b")
    assert value("gateway_ws_connections") == sockets and value("gateway_ws_watches") == watches
