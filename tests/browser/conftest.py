"""Browser end-to-end fixtures: Debian's Chromium driven by Playwright, against the real
running system (Odoo stand-in, RabbitMQ, SQLite store, Dramatiq worker, gateway), with
the page loaded through a TCP proxy that can really cut or refuse the browser's link.

Chromium: ``apt-get install -y chromium`` (never ``playwright install``). Without it these
tests skip, except in CI (``CI`` set), where they fail.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ROOT, free_port
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


class TcpProxy:
    """A TCP proxy on 127.0.0.1 in its own thread, to break the browser's link for real.

    ``cut()`` aborts every open connection (the browser sees its socket close);
    ``refuse()`` also stops listening, so new connections are refused until ``restore()``;
    ``blackhole()`` keeps connections open but forwards nothing, like a dead network.
    """

    def __init__(self, port: int, target_port: int | None = None, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.target_port = target_port
        self._mode = "pass"
        self._conns: set[asyncio.StreamWriter] = set()
        self._server: asyncio.base_events.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tcp-proxy-{port}", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def stop(self) -> None:
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def cut(self) -> None:
        self._call(self._abort_all())

    def refuse(self) -> None:
        self._call(self._refuse())

    def blackhole(self) -> None:
        self._mode = "blackhole"

    def restore(self) -> None:
        self._mode = "pass"
        self._call(self._listen())

    # -- inside the proxy's loop

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)

    async def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        await self._abort_all()

    async def _abort_all(self) -> None:
        for writer in list(self._conns):
            writer.transport.abort()
        self._conns.clear()

    async def _shutdown(self) -> None:
        await self._refuse()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._conns.add(writer)
        try:
            up_reader, up_writer = await asyncio.open_connection(self.host, self.target_port)
        except OSError:
            writer.transport.abort()
            self._conns.discard(writer)
            return
        self._conns.add(up_writer)
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._conns.discard(w)
                w.transport.abort()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self._mode == "blackhole":
                    continue  # swallowed, like packets into a dead link
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (OSError, RuntimeError):
            writer.transport.abort()


@pytest.fixture(scope="session", autouse=True)
def _requirements() -> None:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's Chromium with `apt-get install -y chromium`"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    require_service("RabbitMQ", "127.0.0.1", 5672, "rabbitmq-server -detached")


@pytest.fixture(scope="session")
def proxy() -> Iterator[TcpProxy]:
    """Bound before the gateway starts, so the page's origin (the proxy's address) is known."""
    proxy = TcpProxy(free_port()).start()
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def browser_stack(tmp_path_factory: pytest.TempPathFactory, proxy: TcpProxy) -> Iterator[Stack]:
    path = tmp_path_factory.mktemp("browser-store") / "gateway.sqlite3"
    overrides = {
        "GATEWAY_ALLOWED_ORIGINS": proxy.url,
        "GATEWAY_TOKENS": f"tok-demo=demo,tok-other=other,{PAGE_TOKEN}=demo",
    }
    with running_stack(f"sqlite:///{path}", LOG_DIR, gateways=1, **overrides) as stack:
        proxy.target_port = int(stack.base.rsplit(":", 1)[1])
        yield stack


@pytest.fixture(scope="session")
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


@pytest.fixture
def site(browser_stack: Stack, proxy: TcpProxy) -> Iterator[TcpProxy]:
    """The proxy, passing traffic; whatever a test did to it is undone afterwards."""
    proxy.restore()
    browser_stack.standin.clear_faults()
    yield proxy
    proxy.restore()
    browser_stack.standin.clear_faults()


@pytest.fixture
def page(browser: Any, site: TcpProxy, browser_stack: Stack) -> Iterator[Any]:
    """A fresh browser context (its own IndexedDB and localStorage) showing the demo page."""
    context = browser.new_context(viewport={"width": 420, "height": 900})
    context.set_default_timeout(30_000)
    page = context.new_page()
    messages: list[str] = []
    page.on("console", lambda m: messages.append(f"console.{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.goto(site.url + "/")
    page.wait_for_selector('[data-testid="app"][data-ready="true"]')
    try:
        yield page
    finally:
        if messages:
            print("browser console:\n" + "\n".join(messages))
        context.close()
