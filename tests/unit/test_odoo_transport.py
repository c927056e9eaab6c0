"""The lean opener (workers/odoo_transport.py) against urllib's, on the Odoo stand-in: the
same answers, and for every fault the stand-in injects, a failure the worker classifies
the same way (so exactly-once and the retry policy see no difference)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import odoorpc
import pytest

from tests.odoo_standin import FaultRule, OdooStandin
from workers.classify import classify
from workers.odoo_transport import LeanOpener, lean_opener

LOOKUP = ("sale.order", "search_read", [], {"domain": [["client_order_ref", "=", "GW-none"]], "fields": ["id"]})


@pytest.fixture(scope="module")
def standin() -> Iterator[OdooStandin]:
    with OdooStandin(port=0).start() as s:
        yield s


def session(port: int, lean: bool, timeout: float = 5.0) -> Any:
    opener = LeanOpener("127.0.0.1", port) if lean else None
    return odoorpc.ODOO("127.0.0.1", port=port, timeout=timeout, version="17.0", opener=opener)


def logged_in(standin: OdooStandin, lean: bool, timeout: float = 5.0) -> Any:
    odoo = session(standin.port, lean, timeout)
    odoo.login("odoo", "admin", "admin")
    return odoo


def outcome(call: Any) -> Any:
    try:
        return ("ok", call())
    except Exception as exc:
        found = classify(exc)
        return ("failed", found.failure, found.code)


def test_the_same_answers_as_urllib(standin: OdooStandin) -> None:
    lean, plain = logged_in(standin, lean=True), logged_in(standin, lean=False)
    assert lean.env.uid == plain.env.uid == 2
    args = ("res.partner", "search_read", [], {"domain": [["name", "=", "Demo Customer"]], "fields": ["id", "name"]})
    assert lean.execute_kw(*args) == plain.execute_kw(*args) != []
    created = lean.execute_kw("res.partner", "create", [], {"vals_list": [{"name": "Lean Opener Ltd"}]})
    assert plain.execute_kw("res.partner", "read", [created], {"fields": ["name"]})[0]["name"] == "Lean Opener Ltd"


@pytest.mark.parametrize(
    "rule",
    [
        FaultRule(kind="http_status", status=502, model="sale.order", method="search_read"),
        FaultRule(kind="http_status", status=503, model="sale.order", method="search_read"),
        FaultRule(kind="http_status", status=504, model="sale.order", method="search_read"),
        FaultRule(kind="reset", model="sale.order", method="search_read"),
        FaultRule(kind="commit_then_drop", model="sale.order", method="search_read"),
        FaultRule(kind="non_json", model="sale.order", method="search_read"),
        FaultRule(kind="delay", seconds=1.0, model="sale.order", method="search_read"),
        FaultRule(
            kind="error",
            error_name="odoo.exceptions.ValidationError",
            message="no",
            model="sale.order",
            method="search_read",
        ),
    ],
    ids=lambda rule: f"{rule.kind}-{rule.status or ''}",
)
def test_every_fault_classifies_as_under_urllib(standin: OdooStandin, rule: FaultRule) -> None:
    outcomes = []
    for lean in (True, False):
        odoo = logged_in(standin, lean, timeout=0.5)
        standin.add_fault(rule)
        outcomes.append(outcome(lambda odoo=odoo: odoo.execute_kw(*LOOKUP)))
    standin.clear_faults()
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "failed"


def test_a_closed_port_classifies_as_under_urllib() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends: nobody listens
    outcomes = [outcome(lambda lean=lean: session(port, lean).login("odoo", "admin", "admin")) for lean in (1, 0)]
    assert outcomes[0] == outcomes[1]
    assert outcomes[0][0] == "failed" and outcomes[0][2] == "odoo_unreachable"


def test_https_and_proxies_keep_urllib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    assert isinstance(lean_opener("http", "odoo", 8069), LeanOpener)
    assert lean_opener("https", "odoo", 443) is None
    monkeypatch.setenv("http_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "")
    assert lean_opener("http", "odoo", 8069) is None
    monkeypatch.setenv("no_proxy", "odoo")
    assert isinstance(lean_opener("http", "odoo", 8069), LeanOpener)
