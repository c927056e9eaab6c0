"""The short chaos profile, in every ``make test`` and CI run (``make chaos`` runs the full
one): thousands of tasks (sale orders, and counts of a few hot products from many devices
at once) through worker kills, broker restarts, a gateway kill, Odoo faults and a bad
link, and not one lost, duplicated, applied under another task's name or out of order."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.chaos.checker import COUNTERS
from tests.chaos.profiles import PROFILES
from tests.chaos.run import format_report, run_profile
from tests.support.processes import ROOT
from tests.support.services import require_service


@pytest.mark.timeout(600)
def test_short_chaos_profile_loses_and_duplicates_nothing() -> None:
    require_service("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached")
    require_service(
        "PostgreSQL", "127.0.0.1", 5432, "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
    )
    work_dir = ROOT / "test-artifacts" / "chaos-short"
    figures = asyncio.run(run_profile(PROFILES["short"], work_dir))
    (work_dir / "figures.json").write_text(json.dumps(figures, indent=2))
    print(format_report(figures))
    assert figures["acknowledged"] == PROFILES["short"].tasks
    assert {name: figures["counters"][name] for name in COUNTERS} == dict.fromkeys(COUNTERS, 0), figures["examples"]
    # The faults really happened.
    for fault in ("worker SIGKILL", "rabbitmq stop_app/start_app", "rabbitmq SIGKILL + restart", "gateway SIGKILL"):
        assert figures["faults"].get(fault, 0) >= 1, fault
    assert figures["client_restarts"] >= PROFILES["short"].clients
    # Workers ran on each Odoo API in turn (JSON-RPC and JSON-2), restarted after each kill.
    assert all(figures["worker_starts_by_odoo_api"].get(api, 0) >= 1 for api in PROFILES["short"].odoo_apis), figures
    # Counts of the hot products really ran, some of them equal to the stock (no stock change).
    assert figures["inventory"]["tasks"] > 0 and figures["inventory"]["moves"] > 0, figures["inventory"]
    assert figures["inventory"]["noop_lines"] > 0, figures["inventory"]
