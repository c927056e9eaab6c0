"""Browser end-to-end fixtures: Debian's Chromium driven by Playwright, against the real
running system (Odoo stand-in, RabbitMQ, SQLite store, Dramatiq worker, gateway), with
the page loaded through tests/support/proxy.py's FaultProxy, which really cuts, refuses or
blackholes the browser's link. The page's origin is the proxy's address.

Chromium: ``apt-get install -y chromium`` (never ``playwright install``). Without it these
tests skip, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, free_port
from tests.support.proxy import FaultProxy
from tests.support.services import require_service
from tests.support.stack import Stack, running_stack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOG_DIR = ROOT / "test-artifacts" / "logs"
# The page's default token; the stack's own tokens stay valid too.
PAGE_TOKEN = "dev-token"


@pytest.fixture(scope="session", autouse=True)
def _requirements() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    require_service("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached")


@pytest.fixture(scope="package")
def proxy() -> Iterator[FaultProxy]:
    """Listening before the gateway starts, so the page's origin (the proxy's address) is known
    and can be allowed; it learns the gateway's port once the stack is up."""
    proxy = FaultProxy("127.0.0.1", 9, listen_port=free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="package")
def browser_stack(tmp_path_factory: pytest.TempPathFactory, proxy: FaultProxy) -> Iterator[Stack]:
    path = tmp_path_factory.mktemp("browser-store") / "gateway.sqlite3"
    overrides = {
        "GATEWAY_ALLOWED_ORIGINS": proxy.http_url,
        "GATEWAY_TOKENS": f"tok-demo=demo,tok-other=other,{PAGE_TOKEN}=demo",
        "GATEWAY_DEMO_TOKEN": PAGE_TOKEN,
    }
    with running_stack(f"sqlite:///{path}", LOG_DIR, gateways=1, **overrides) as stack:
        proxy.set_target("127.0.0.1", int(stack.base.rsplit(":", 1)[1]))
        yield stack


@pytest.fixture(scope="package")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    scratch = tmp_path_factory.mktemp("chromium-home")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": str(scratch), "TMPDIR": str(scratch)},
        )
        yield browser
        browser.close()


def unreachable(proxy: FaultProxy) -> None:
    """The gateway cannot be reached: new connections refused, open ones reset."""
    proxy.refuse(True)
    proxy.cut()


def reachable(proxy: FaultProxy) -> None:
    """Undo every fault: listening, forwarding both ways, no added latency."""
    proxy.refuse(False)
    proxy.blackhole(False)
    proxy.set_latency(0)


@pytest.fixture
def site(browser_stack: Stack, proxy: FaultProxy) -> Iterator[FaultProxy]:
    """The proxy, passing traffic; whatever a test did to it is undone afterwards."""
    reachable(proxy)
    browser_stack.standin.clear_faults()
    yield proxy
    reachable(proxy)
    browser_stack.standin.clear_faults()


@pytest.fixture
def page(browser: Any, site: FaultProxy, browser_stack: Stack) -> Iterator[Any]:
    """A fresh browser context (its own IndexedDB and localStorage) showing the demo page."""
    context = browser.new_context(viewport={"width": 420, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.goto(site.http_url + "/")
    page.wait_for_selector('[data-testid="app"][data-ready="true"]')
    try:
        yield page
    finally:
        if messages:
            print("browser console:\n" + "\n".join(messages))
        context.close()
