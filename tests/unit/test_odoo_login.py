"""The worker's Odoo login: waits for an Odoo that is starting, never retries a rejection."""

from __future__ import annotations

import urllib.error
from typing import Any

import pytest
from odoorpc.error import RPCError

from shared.config import Settings
from shared.errors import RetryableTaskError
from workers.classify import OdooLoginRejected
from workers.odoo_client import OdooRpcClient


class FakeOdoo:
    """odoorpc.ODOO as the client uses it; each login takes the next scripted outcome."""

    def __init__(self, outcomes: list[BaseException | None]) -> None:
        self.outcomes = outcomes
        self.logins = 0

    def __call__(self, *args: Any, **kwargs: Any) -> FakeOdoo:
        return self

    def login(self, db: str, user: str, password: str) -> None:
        self.logins += 1
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome

    def execute_kw(self, *args: Any) -> str:
        return "ok"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def client(odoo: FakeOdoo, clock: Clock, wait: float = 60.0) -> OdooRpcClient:
    settings = Settings(odoo_url="http://odoo:8069", odoo_startup_wait=wait)
    return OdooRpcClient(settings, connect=odoo, sleep=clock.sleep, clock=lambda: clock.now)


def refused() -> urllib.error.URLError:
    return urllib.error.URLError(ConnectionRefusedError(111, "Connection refused"))


def test_first_login_waits_with_backoff_for_odoo_to_come_up() -> None:
    database_missing = RPCError("db", info={"code": 200, "data": {"name": "psycopg2.OperationalError"}})
    odoo, clock = FakeOdoo([refused(), refused(), database_missing, None]), Clock()
    assert client(odoo, clock).execute_kw("res.partner", "search", [[]]) == "ok"
    assert odoo.logins == 4 and clock.slept == [1.0, 2.0, 4.0]


def test_first_login_gives_up_after_the_startup_wait_as_transient() -> None:
    odoo, clock = FakeOdoo([refused()] * 10), Clock()
    with pytest.raises(RetryableTaskError):
        client(odoo, clock, wait=5.0).execute_kw("res.partner", "search", [[]])
    assert sum(clock.slept) <= 5.0


def test_a_rejected_login_is_permanent_and_never_tried_again() -> None:
    odoo, clock = FakeOdoo([RPCError("Wrong login ID or password")]), Clock()
    worker = client(odoo, clock)
    for _ in range(3):
        with pytest.raises(OdooLoginRejected):
            worker.execute_kw("res.partner", "search", [[]])
    assert odoo.logins == 1 and clock.slept == []
