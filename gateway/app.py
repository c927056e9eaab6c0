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
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket

from gateway import admin_api, http_api, metrics
from gateway.auth import Authenticator, OriginPolicy
from gateway.failed_tasks import FailedTasks
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

__all__ = ["DirectWebSocket", "app_from_env", "create_app"]

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
WS_PATH = "/v1/ws"
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

    async def gateway_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, GatewayError)
        return http_api.error_response(exc)

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
        Route("/v1/tasks", http_api.submit_task, methods=["POST"]),
        Route("/v1/tasks/{task_id}", http_api.get_task, methods=["GET"]),
        Route("/v1/tasks/{task_id}/events", http_api.list_events, methods=["GET"]),
        Route("/healthz", http_api.healthz, methods=["GET"]),
        Route("/readyz", http_api.readyz, methods=["GET"]),
        Route("/openapi.json", http_api.openapi, methods=["GET"]),
        Route("/metrics", http_api.prometheus_metrics, methods=["GET"]),
        Route("/v1/admin/failed", admin_api.list_failed, methods=["GET"]),
        Route("/v1/admin/tasks/{task_id}/retry", admin_api.retry_task, methods=["POST"]),
        WebSocketRoute(WS_PATH, websocket_endpoint),  # in-process (TestClient) use; served by DirectWebSocket
        Route("/", index, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(LastResort), Middleware(SecurityHeaders), *_cors(settings)],
        lifespan=lifespan,
        exception_handlers={GatewayError: gateway_error, HTTPException: http_error},
    )


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


class DirectWebSocket:
    """``/v1/ws`` straight to its endpoint, past Starlette's middleware stack and router;
    everything else (HTTP, lifespan) to the app. Each layer is a coroutine frame that an
    open socket holds for its whole life, and none of them does anything for a socket (the
    endpoint checks Origin and catches its own errors)."""

    def __init__(self, app: Starlette) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and scope["path"] == WS_PATH:
            scope["app"] = self.app
            await websocket_endpoint(WebSocket(scope, receive, send))
        else:
            await self.app(scope, receive, send)


def app_from_env() -> DirectWebSocket:
    """Factory for ``uvicorn --factory gateway.app:app_from_env``. Logging is configured
    here too: each of uvicorn's worker processes (``GATEWAY_WORKERS``) starts afresh."""
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    return DirectWebSocket(create_app(settings))
