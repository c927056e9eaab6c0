"""The Odoo adapter for JSON-2 (Odoo 19+): ``execute_kw`` over ``POST /json/2/<model>/<method>``.

Same interface as :class:`workers.odoo_client.OdooRpcClient`, so the kinds run unchanged:
arguments travel by name, the context beside them (``workers.json2_wire``). There is no
login: every request carries the worker user's API key as a bearer token and, for servers
hosting several databases, the database in ``X-Odoo-Database``. Each request is one Odoo
transaction, as each ``execute_kw`` is on JSON-RPC.

One ``httpx.Client`` per process, shared by the worker threads (its docstring: "It can be
shared between threads"): its connection pool keeps connections to Odoo open between calls
(odoorpc opens one per call).

A key Odoo refuses (HTTP 401: wrong, revoked or expired) fails the task with one clear
error, and from then on this process sends nothing more with that key: every later task
fails at once with the same error until the key is replaced and the workers restarted.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import urlsplit

import httpx

from shared.config import Settings
from shared.errors import ConfigurationError
from workers.classify import OdooLoginRejected
from workers.json2_wire import read_reply, request_body

__all__ = ["POOL_LIMITS", "Json2Client", "json2_timeout"]

log = logging.getLogger(__name__)

#: More than the threads of a worker process (Dramatiq's default and deploy/'s: 8), so a
#: thread never waits for a connection; idle ones beyond the keep-alive count are closed.
POOL_LIMITS = httpx.Limits(max_connections=16, max_keepalive_connections=8, keepalive_expiry=30.0)
USER_AGENT = "odoo-submission-gateway (json-2)"


def json2_timeout(seconds: float) -> httpx.Timeout:
    """ODOO_TIMEOUT for reading and writing; connecting (nothing sent yet) gives up sooner."""
    return httpx.Timeout(seconds, connect=min(10.0, seconds))


class Json2Client:
    api = "json2"

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        url = urlsplit(settings.odoo_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"ODOO_URL must look like http(s)://host[:port][/path], got {settings.odoo_url!r}")
        key = settings.odoo_api_key.get_secret_value()
        if not key:
            raise ConfigurationError(
                "Odoo's JSON-2 API needs an API key: set ODOO_API_KEY to a key of the worker user "
                "(README 'Odoo APIs'), or set ODOO_API=jsonrpc."
            )
        self._settings = settings
        self._base = settings.odoo_url.rstrip("/")
        headers = {
            "Authorization": f"bearer {key}",
            "Content-Type": "application/json; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        if settings.odoo_db:
            headers["X-Odoo-Database"] = settings.odoo_db
        self._http = httpx.Client(
            base_url=self._base,
            headers=headers,
            timeout=json2_timeout(settings.odoo_timeout),
            limits=POOL_LIMITS,
            follow_redirects=False,  # a redirect (to /web/login...) means a wrong URL, not a result
            transport=transport,
        )
        # Set once Odoo refuses the key; read without a lock (a str assignment is atomic).
        self._key_rejected: str | None = None

    def close(self) -> None:
        self._http.close()

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        if self._key_rejected is not None:
            raise OdooLoginRejected(self._key_rejected, code="odoo_api_key_rejected")
        body = request_body(model, method, args, kwargs)
        path = f"/json/2/{model}/{method}"
        response = self._http.post(path, content=json.dumps(body).encode())
        if response.status_code == 401:
            self._reject(response)
        return read_reply(response.status_code, response.text, f"{self._base}{path}")

    def _reject(self, response: httpx.Response) -> None:
        try:
            reason = str(response.json().get("message", "")) or response.reason_phrase
        except (ValueError, AttributeError):
            reason = response.reason_phrase
        s = self._settings
        self._key_rejected = (
            f"Odoo refused the worker's API key on database '{s.odoo_db}' (HTTP 401: {reason}). "
            "The key is wrong, revoked or expired: create a new key for the worker user, set ODOO_API_KEY "
            "and restart the workers. Nothing is sent to Odoo with this key again."
        )
        log.error("odoo api key rejected db=%s url=%s: %s", s.odoo_db, s.odoo_url, reason)
        raise OdooLoginRejected(self._key_rejected, code="odoo_api_key_rejected")
