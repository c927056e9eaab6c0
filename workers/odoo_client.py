"""The Odoo adapter for JSON-RPC: ``execute_kw`` over odoorpc, one logged-in session per thread.

Kinds only see :class:`shared.kinds.OdooCall`; :mod:`workers.odoo_json2` is the JSON-2
twin (Odoo 19+) and :mod:`workers.odoo_api` picks one (``ODOO_API``). odoorpc is not documented as thread-safe and keeps
per-session state, hence one session per worker thread.

Logging in: until this process has logged in once, Odoo may still be starting (or its
database still being created by the init job), so a login that cannot reach Odoo, or that
Odoo answers with a server error, is tried again with backoff for ``ODOO_STARTUP_WAIT``
seconds. A login Odoo *rejects* (wrong user or password) is never tried again, by any
thread, because Odoo locks out the whole remote IP after a few failures. Logins happen one
at a time, so a wrong password costs one failure, not one per thread.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
import urllib.error
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import odoorpc
from odoorpc.error import RPCError

from shared.config import Settings
from shared.errors import RetryableTaskError
from workers.classify import OdooLoginRejected

__all__ = ["OdooRpcClient"]

log = logging.getLogger(__name__)


class OdooRpcClient:
    api = "jsonrpc"

    def __init__(
        self,
        settings: Settings,
        *,
        connect: Callable[..., Any] = odoorpc.ODOO,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        url = urlsplit(settings.odoo_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"ODOO_URL must look like http(s)://host:port, got {settings.odoo_url!r}")
        self._host = url.hostname
        self._protocol = "jsonrpc+ssl" if url.scheme == "https" else "jsonrpc"
        self._port = url.port or (443 if url.scheme == "https" else 8069)
        self._settings = settings
        self._local = threading.local()
        # Set once Odoo rejects our credentials: from then on no thread logs in again,
        # because Odoo locks out the whole remote IP after a few failures.
        self._login_rejected: str | None = None
        self._logged_in_once = False
        self._login_lock = threading.Lock()
        self._connect = connect
        self._sleep = sleep
        self._clock = clock

    def _session(self) -> Any:
        odoo = getattr(self._local, "odoo", None)
        if odoo is not None:
            return odoo
        with self._login_lock:
            odoo = self._login()
        self._local.odoo = odoo
        return odoo

    def _login(self) -> Any:
        s = self._settings
        deadline = self._clock() + (0.0 if self._logged_in_once else s.odoo_startup_wait)
        delay = 1.0
        while True:
            if self._login_rejected is not None:
                raise OdooLoginRejected(self._login_rejected)
            odoo = self._connect(
                self._host, protocol=self._protocol, port=self._port, timeout=s.odoo_timeout, version=s.odoo_version
            )
            try:
                # Odoo 14+ accepts an API key in place of the password on JSON-RPC.
                secret = s.odoo_password.get_secret_value() or s.odoo_api_key.get_secret_value()
                odoo.login(s.odoo_db, s.odoo_user, secret)
            except RPCError as exc:
                if _rejected(exc):
                    self._reject(exc)
                failure: BaseException = exc  # e.g. the database is still being created
            except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
                failure = exc  # not reachable, not up yet, or a proxy's error page
            else:
                self._logged_in_once = True
                log.info("odoo session opened user=%s db=%s url=%s", s.odoo_user, s.odoo_db, s.odoo_url)
                return odoo
            if self._clock() + delay > deadline:
                raise RetryableTaskError(f"Odoo is not ready for the worker's login ({type(failure).__name__}).")
            log.warning("odoo not ready for login (%s); retrying in %.0fs", type(failure).__name__, delay)
            self._sleep(delay)
            delay = min(delay * 2, 15.0)

    def _reject(self, exc: RPCError) -> None:
        s = self._settings
        self._login_rejected = (
            f"Odoo rejected the worker's login for user '{s.odoo_user}' on database "
            f"'{s.odoo_db}' ({exc}). Fix ODOO_USER/ODOO_PASSWORD (or ODOO_API_KEY) and restart the workers; "
            "logins are not retried automatically because Odoo locks out the whole IP."
        )
        log.error("odoo login rejected user=%s db=%s", s.odoo_user, s.odoo_db)
        raise OdooLoginRejected(self._login_rejected) from None

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        return self._session().execute_kw(model, method, args, kwargs or {})


def _rejected(exc: RPCError) -> bool:
    """Odoo answered the login and said no (odoorpc: "Wrong login ID or password"; Odoo:
    AccessDenied), as opposed to failing to answer it (a database error while it starts)."""
    info = exc.info if isinstance(exc.info, dict) else {}
    name = str((info.get("data") or {}).get("name", ""))
    return not info or "AccessDenied" in name or "Access Denied" in str(exc)
