"""The demo page and gateway-client.js in Debian's Chromium, against the real running
system, with the browser's link really cut or refused by a TCP proxy."""

from __future__ import annotations

import time
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import reachable, unreachable
from tests.odoo_standin.faults import FaultRule
from tests.support.processes import ROOT
from tests.support.proxy import FaultProxy
from tests.support.stack import Stack

pytestmark = pytest.mark.integration

FINAL = 60_000  # ms: a task's way through broker, worker and Odoo, retries included
SCREENSHOT = ROOT / "docs" / "demo-page.png"


def applied(stack: Stack, task_id: str | None = None) -> int:
    """Inventory applications in Odoo, all of them or those of one task."""
    effects = stack.standin.effects(model="stock.quant", method="action_apply_inventory")
    if task_id is None:
        return len(effects)
    return sum(1 for e in effects if e.context.get("inventory_name") == f"GW-{task_id}")


def submit_count(page: Page, location: str, lines: list[tuple[str, Any]]) -> Locator:
    """Fill and submit the form; the new task's list item (found by its idempotency key)."""
    before = page.get_by_test_id("task").count()
    page.get_by_test_id("location").fill(location)
    rows = page.get_by_test_id("line")
    while rows.count() < len(lines):
        page.get_by_test_id("add-line").click()
    while rows.count() > len(lines):
        rows.last.get_by_test_id("line-remove").click()
    for index, (product, quantity) in enumerate(lines):
        rows.nth(index).get_by_test_id("line-product").fill(product)
        rows.nth(index).get_by_test_id("line-quantity").fill(str(quantity))
    page.get_by_test_id("submit").click()
    expect(page.get_by_test_id("task")).to_have_count(before + 1)
    key = page.get_by_test_id("task").first.get_attribute("data-key")
    assert key
    return task_item(page, key)


def task_item(page: Page, key: str) -> Locator:
    return page.locator(f'[data-testid="task"][data-key="{key}"]')


def finished(item: Locator, status: str = "succeeded") -> str:
    """Wait for the final status; the task id shown."""
    expect(item).to_have_attribute("data-status", status, timeout=FINAL)
    task_id = item.get_attribute("data-task-id")
    assert task_id
    expect(item.get_by_test_id("task-id")).to_have_text(task_id)
    return task_id


def online(page: Page) -> None:
    expect(page.get_by_test_id("connection-status")).to_have_attribute("data-state", "online", timeout=30_000)


def outbox_size(page: Page) -> int:
    size: int = page.evaluate(
        """() => new Promise((resolve, reject) => {
            const open = indexedDB.open('gateway-demo');
            open.onsuccess = () => {
                const req = open.result.transaction('outbox').objectStore('outbox').count();
                req.onsuccess = () => { resolve(req.result); open.result.close(); };
                req.onerror = () => reject(req.error);
            };
            open.onerror = () => reject(open.error);
        })"""
    )
    return size


def test_submit_succeeds_once(page: Page, browser_stack: Stack) -> None:
    online(page)
    # The browser module offered the compact form (gateway.v1c) and the gateway took it.
    assert page.evaluate("() => window.gatewayClient._compact") is True
    before = applied(browser_stack)

    item = submit_count(page, "WH/Stock", [("DEMO-001", 12), ("DEMO-002", 3)])
    task_id = finished(item)

    expect(item.get_by_test_id("task-result")).to_contain_text("Applied in Odoo")
    assert browser_stack.task(task_id)["status"] == "succeeded"
    assert applied(browser_stack, task_id) == 1
    assert applied(browser_stack) == before + 1
    assert outbox_size(page) == 0


def test_cut_then_reload_shows_final_status(page: Page, site: FaultProxy, browser_stack: Stack) -> None:
    online(page)
    before = applied(browser_stack)

    item = submit_count(page, "WH/Stock", [("DEMO-003", 5)])
    key = item.get_attribute("data-key")
    site.cut()  # the socket drops right after the submission was saved (and maybe sent)
    page.reload()
    page.wait_for_selector('[data-testid="app"][data-ready="true"]')

    item = task_item(page, key or "")
    expect(page.get_by_test_id("task")).to_have_count(1)  # the same record, survived the reload
    task_id = finished(item)
    assert applied(browser_stack, task_id) == 1
    assert applied(browser_stack) == before + 1
    assert outbox_size(page) == 0


def test_submission_while_unreachable_is_sent_on_restore(page: Page, site: FaultProxy, browser_stack: Stack) -> None:
    online(page)
    before = applied(browser_stack)

    unreachable(site)
    expect(page.get_by_test_id("connection-status")).not_to_have_attribute("data-state", "online")
    item = submit_count(page, "WH/Stock", [("DEMO-004", 9)])
    expect(item).to_have_attribute("data-status", "queued")
    expect(item.get_by_test_id("task-status")).to_have_text("queued offline")
    assert outbox_size(page) == 1
    time.sleep(1.5)  # reconnect attempts keep failing meanwhile
    expect(item).to_have_attribute("data-status", "queued")
    assert applied(browser_stack) == before

    reachable(site)
    task_id = finished(item)  # the backoff is capped at 20 s
    assert applied(browser_stack, task_id) == 1
    assert applied(browser_stack) == before + 1
    assert outbox_size(page) == 0


def test_unacked_submission_survives_reload(page: Page, site: FaultProxy, browser_stack: Stack) -> None:
    """Queued while unreachable, page reloaded, link back: sent once from the IndexedDB outbox."""
    online(page)
    before = applied(browser_stack)
    unreachable(site)
    expect(page.get_by_test_id("connection-status")).not_to_have_attribute("data-state", "online")
    item = submit_count(page, "WH/Stock", [("DEMO-005", 4)])
    key = item.get_attribute("data-key") or ""
    expect(item).to_have_attribute("data-status", "queued")

    reachable(site)
    page.reload()
    page.wait_for_selector('[data-testid="app"][data-ready="true"]')
    task_id = finished(task_item(page, key))
    expect(page.get_by_test_id("task")).to_have_count(1)
    assert applied(browser_stack, task_id) == 1
    assert applied(browser_stack) == before + 1


def test_missed_events_are_resumed(page: Page, site: FaultProxy, browser_stack: Stack) -> None:
    """The task ends while the page has no link; on reconnect, `resume` brings the outcome."""
    online(page)
    before = applied(browser_stack)
    browser_stack.standin.add_fault(
        FaultRule(kind="delay", model="stock.quant", method="action_apply_inventory", seconds=1.5)
    )
    item = submit_count(page, "WH/Stock", [("DEMO-006", 8)])
    expect(item).to_have_attribute("data-status", "running", timeout=FINAL)
    task_id = item.get_attribute("data-task-id") or ""

    unreachable(site)
    assert browser_stack.wait_final(task_id)["status"] == "succeeded"
    expect(item).to_have_attribute("data-status", "running")  # the outcome went nowhere

    reachable(site)
    assert finished(item) == task_id
    expect(item.get_by_test_id("task-result")).to_contain_text("Applied in Odoo")
    assert applied(browser_stack, task_id) == 1
    assert applied(browser_stack) == before + 1


@pytest.mark.parametrize(
    ("location", "quantity", "field"),
    [("", 5, "payload.location"), ("WH/Stock", -3, "payload.lines.0.quantity")],
    ids=["empty-location", "negative-quantity"],
)
def test_bad_input_shows_the_gateways_validation_error(
    page: Page, browser_stack: Stack, location: str, quantity: int, field: str
) -> None:
    online(page)
    before = applied(browser_stack)

    item = submit_count(page, location, [("DEMO-006", quantity)])

    expect(item).to_have_attribute("data-status", "rejected", timeout=15_000)
    expect(item.get_by_test_id("task-status")).to_have_text("rejected")
    error = item.get_by_test_id("task-error")
    expect(error).to_contain_text("validation_failed")
    expect(error).to_contain_text(field)
    assert item.get_attribute("data-task-id") == ""
    assert outbox_size(page) == 0  # refused for good: not resent
    page.reload()
    expect(task_item(page, item.get_attribute("data-key") or "")).to_have_attribute("data-status", "rejected")
    assert applied(browser_stack) == before


def test_dead_link_is_detected_by_app_ping(browser: Any, site: FaultProxy, browser_stack: Stack) -> None:
    """A link that swallows everything (no close) is noticed by the missing pong."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(site.http_url + "/?ping=500&pong=1000")
        online(page)
        before = applied(browser_stack)

        site.blackhole(True)
        expect(page.get_by_test_id("connection-status")).not_to_have_attribute("data-state", "online", timeout=5_000)
        item = submit_count(page, "WH/Stock", [("DEMO-007", 6)])
        expect(item).to_have_attribute("data-status", "queued")

        site.blackhole(False)
        site.cut()  # also drop the handshakes the black hole held
        task_id = finished(item)
        assert applied(browser_stack, task_id) == 1
        assert applied(browser_stack) == before + 1
    finally:
        context.close()


def test_browser_offline_and_online_events(page: Page, browser_stack: Stack) -> None:
    online(page)
    before = applied(browser_stack)

    page.context.set_offline(True)
    expect(page.get_by_test_id("connection-status")).not_to_have_attribute("data-state", "online", timeout=5_000)
    item = submit_count(page, "WH/Stock", [("DEMO-008", 1)])
    expect(item.get_by_test_id("task-status")).to_have_text("queued offline")

    started = time.monotonic()
    page.context.set_offline(False)  # the 'online' event reconnects at once, not after backoff
    task_id = finished(item)
    assert time.monotonic() - started < 15
    assert applied(browser_stack, task_id) == 1
    assert applied(browser_stack) == before + 1


def test_refused_token_stops_until_a_valid_one(page: Page, browser_stack: Stack) -> None:
    online(page)
    page.get_by_test_id("token").fill("not-a-token")
    page.get_by_test_id("token-apply").click()
    badge = page.get_by_test_id("connection-status")
    expect(badge).to_have_attribute("data-state", "offline")
    expect(badge).to_contain_text("token refused")
    item = submit_count(page, "WH/Stock", [("DEMO-009", 2)])
    expect(item).to_have_attribute("data-status", "queued")

    page.reload()  # the token is remembered (localStorage), and still refused
    expect(page.get_by_test_id("token")).to_have_value("not-a-token")
    expect(badge).to_contain_text("token refused")

    page.get_by_test_id("token").fill("dev-token")
    page.get_by_test_id("token-apply").click()
    online(page)
    finished(task_item(page, item.get_attribute("data-key") or ""))


def test_screenshot_with_finished_tasks(page: Page, browser_stack: Stack) -> None:
    """A few finished tasks of each kind, saved as docs/demo-page.png for the README."""
    online(page)
    done = submit_count(page, "WH/Stock", [("DEMO-010", 24), ("DEMO-011", 7)])
    finished(done)
    unknown = submit_count(page, "WH/Stock", [("DEMO-999", 1)])
    finished(unknown, "failed")
    expect(unknown.get_by_test_id("task-error")).to_contain_text("DEMO-999")
    rejected = submit_count(page, "WH/Stock", [("DEMO-012", -1)])
    expect(rejected).to_have_attribute("data-status", "rejected", timeout=15_000)
    last = submit_count(page, "WH/Stock", [("DEMO-013", 40)])
    finished(last)

    page.get_by_test_id("location").fill("WH/Stock")
    page.get_by_test_id("line-product").first.fill("DEMO-014")
    page.get_by_test_id("line-quantity").first.fill("15")
    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000
