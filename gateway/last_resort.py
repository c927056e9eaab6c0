"""The last line of defence for HTTP: an exception nothing else handled (a bug; no input
is meant to get here) becomes a JSON 500 with a reference, and one log line with the
traceback and the same reference, instead of Starlette's text/plain page and uvicorn's
"Exception in ASGI application"."""

from __future__ import annotations

import json
import logging
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["LastResort"]

log = logging.getLogger(__name__)


class LastResort:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            reference = uuid.uuid4().hex[:12]
            log.exception("http internal error %s %s reference=%s", scope["method"], scope["path"], reference)
            if started:
                raise  # too late for an answer: the server drops the connection
            body = {
                "error": {
                    "code": "internal_error",
                    "message": f"Internal error (reference {reference}).",
                    "details": {"reference": reference},
                }
            }
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": json.dumps(body).encode()})
