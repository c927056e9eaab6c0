"""The ASGI application: routes, lifespan (store, publisher, relay, retention), errors."""

from __future__ import annotations

import asyncio
import contextlib
import html
import logging
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway import admin_api, http_api, metrics
from gateway.auth import Authenticator, OriginPolicy
from gateway.failed_tasks import FailedTasks
from gateway.gc_policy import settle_heap
from gateway.last_resort import LastResort
from gateway.publisher import TaskPublisher
from gateway.registry import Quotas, SessionRegistry
from gateway.relay import EventRelay
from gateway.security_headers import SecurityHeaders
from gateway.shutdown import GracefulShutdown
from gateway.state import GatewayState
from gateway.submissions import Submissions
from gateway.ws import websocket_endpoint
from odoo_gateway_wire.close_codes import CloseCode
from shared.config import Settings
from shared.errors import GatewayError
from shared.logs import configure_logging
from shared.store import AsyncTaskStore, open_store
from shared.version import VERSION

__all__ = ["DirectRoutes", "app_from_env", "create_app"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
WS_PATH = "/v1/ws"
SUBMIT_PATH = "/v1/tasks"
_PURGE_EVERY = 3600.0


async def _purge_loop(state: GatewayState) -> None:
    day = 86400.0
    while True:
        try:
            report = await state.store.purge(
                state.settings.idempotency_window_days * day, state.settings.history_retention_days * day
            )
            if report.keys_released or report.histories_pruned:
                log.info(
                    "retention keys_released=%d histories_pruned=%d",
                    report.keys_released,
                    report.histories_pruned,
                )
        except GatewayError as exc:
            log.warning("retention pass failed: %s", exc)
        await asyncio.sleep(_PURGE_EVERY)


def demo_page(token: str) -> str:
    """The page at ``/``. It comes pre-filled with a token only where one is configured
    (``make run`` sets ``GATEWAY_DEMO_TOKEN=dev-token``); everywhere else it asks for one."""
    page = (STATIC / "index.html").read_text()
    meta = f'<meta name="gateway-demo-token" content="{html.escape(token, quote=True)}">' if token else ""
    return page.replace("<!-- demo-token -->", meta)


def create_app(settings: Settings) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        store = AsyncTaskStore(await asyncio.to_thread(open_store, settings.database_url), observe=metrics.store_call)
        publisher = TaskPublisher(settings)
        registry = SessionRegistry(
            Quotas(
                sockets_per_tenant=settings.max_sockets_per_tenant,
                watches_per_socket=settings.max_watches_per_socket,
                watches_per_tenant=settings.max_watches_per_tenant,
            )
        )
        relay = EventRelay(settings, store, registry)
        admin_token = settings.admin_token.get_secret_value()
        state = GatewayState(
            settings=settings,
            store=store,
            publisher=publisher,
            relay=relay,
            submissions=Submissions(settings, store, publisher),
            auth=Authenticator(settings.tokens, settings.auth_failures_per_minute),
            origins=OriginPolicy(settings.allowed_origins),
            registry=registry,
            admin_auth=Authenticator(
                {admin_token: "operator"} if admin_token else {}, settings.auth_failures_per_minute
            ),
            failed=FailedTasks(settings, store, publisher, relay),
        )
        app.state.gateway = state
        shutdown = GracefulShutdown(state)
        shutdown.install()
        publisher.start()
        state.relay.start()
        purge = asyncio.create_task(_purge_loop(state))
        if not settings.tokens:
            log.warning("GATEWAY_TOKENS is empty: every request will be refused")
        # Start-up is done: what it made lives as long as the process (gc_policy.py).
        settle_heap()
        log.info("gateway started version=%s store=%s", VERSION, settings.database_url.split("://", 1)[0])
        try:
            yield
        finally:
            shutdown.uninstall()
            registry.close_all(CloseCode.GOING_AWAY, "gateway shutting down; reconnect")
            purge.cancel()
            await state.relay.stop()
            await publisher.stop()
            await store.close()
            metrics.mark_process_dead()
            log.info("gateway stopped")

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse(
            {"error": {"code": code, "message": str(exc.detail), "details": None}},
            status_code=exc.status_code,
            headers=exc.headers,
        )

    page = demo_page(settings.demo_token.get_secret_value())

    async def index(request: Request) -> Response:
        return HTMLResponse(page)

    routes = [
        Route(SUBMIT_PATH, http_api.submit_task, methods=["POST"]),  # served by DirectRoutes in uvicorn
        Route("/v1/tasks/{task_id}", http_api.get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}/events", http_api.list_events, methods=["GET"]),
        Route("/healthz", http_api.healthz, methods=["GET"]),
        Route("/readyz", http_api.readyz, methods=["GET"]),
        Route("/openapi.json", http_api.openapi, methods=["GET"]),
        Route("/metrics", http_api.prometheus_metrics, methods=["GET"]),
        Route("/v1/admin/failed", admin_api.list_failed, methods=["GET"]),
        Route("/v1/admin/tasks/{task_id}/retry", admin_api.retry_task, methods=["POST"]),
        WebSocketRoute(WS_PATH, websocket_endpoint),  # in-process (TestClient) use; served by DirectRoutes
        Route("/", index, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=middleware(settings),
        lifespan=lifespan,
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error},
    )


async def gateway_error(request: Request, exc: Exception) -> Response:
    """The answer to a :class:`GatewayError` on any HTTP route (Starlette's handler, and the
    direct submit path's)."""
    assert isinstance(exc, GatewayError)
    return http_api.error_response(exc)


def middleware(settings: Settings) -> list[Middleware]:
    """What every HTTP answer passes through, outermost first: the app's stack, and the
    direct submit path's (:class:`DirectRoutes`), built from this one list."""
    return [Middleware(LastResort), Middleware(SecurityHeaders), *_cors(settings)]


def _cors(settings: Settings) -> list[Middleware]:
    """CORS for the origins already allowed on the socket (GATEWAY_ALLOWED_ORIGINS), so the
    browser module works from a page served elsewhere. Bearer tokens, not cookies: no
    credentials mode. None without an allow-list (same-origin only, as before)."""
    if not settings.allowed_origins:
        return []
    return [
        Middleware(
            CORSMiddleware,
            allow_origins=list(settings.allowed_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
            expose_headers=["Location", "Retry-After"],
            max_age=600,
        )
    ]


class DirectRoutes:
    """Two routes straight to their endpoints, past Starlette's router; everything else
    (other HTTP, lifespan) to the app.

    - ``/v1/ws``: past the middleware stack too. Each layer is a coroutine frame that an
      open socket holds for its whole life, and none of them does anything for a socket
      (the endpoint checks Origin and catches its own errors).
    - ``POST /v1/tasks``, the hot path: through the app's own middleware (:func:`middleware`:
      the last-resort 500, security headers, CORS) around :func:`http_api.submit_task`, with
      :class:`GatewayError` answered by the app's own handler. What it skips does nothing
      for this route: Starlette's ``ServerErrorMiddleware`` (``LastResort`` inside it
      catches everything first), the router's matching, and ``ExceptionMiddleware``, whose
      only other handler is for ``HTTPException``, which the endpoint never raises. That was
      ~7 % of the gateway's CPU per accept, and the answers are the same bytes
      (``tests/integration/test_direct_submit.py`` compares them).
    """

    def __init__(self, app: Starlette, settings: Settings) -> None:
        self.app = app
        submit: ASGIApp = _direct_submit
        for cls, args, kwargs in reversed(middleware(settings)):
            submit = cls(submit, *args, **kwargs)
        self._submit = submit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            scope["app"] = self.app
            await websocket_endpoint(WebSocket(scope, receive, send))
        elif scope["type"] == "http" and scope["path"] == SUBMIT_PATH and scope["method"] == "POST":
            scope["app"] = self.app
            await self._submit(scope, receive, send)
        else:
            await self.app(scope, receive, send)


async def _direct_submit(scope: Scope, receive: Receive, send: Send) -> None:
    request = Request(scope, receive)
    try:
        response = await http_api.submit_task(request)
    except GatewayError as exc:
        response = await gateway_error(request, exc)
    await response(scope, receive, send)


def app_from_env() -> DirectRoutes:
    """Factory for ``uvicorn --factory gateway.app:app_from_env``. Logging is configured
    here too: each of uvicorn's worker processes (``GATEWAY_WORKERS``) starts afresh."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return DirectRoutes(create_app(settings), settings)
