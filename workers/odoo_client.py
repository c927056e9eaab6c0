"""The Odoo adapter for JSON-RPC: ``execute_kw`` over odoorpc, one logged-in session per thread.

Kinds only see :class:`shared.kinds.OdooCall`; :mod:`workers.odoo_json2` is the JSON-2
twin (Odoo 19+) and :mod:`workers.odoo_api` picks one (``ODOO_API``). odoorpc is not documented as thread-safe and keeps
per-session state, hence one session per worker thread.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import odoorpc
from odoorpc.error import RPCError

from shared.config import Settings
from workers.classify import OdooLoginRejected

__all__ = ["OdooRpcClient"]

log = logging.getLogger(__name__)


class OdooRpcClient:
    api = "jsonrpc"

    def __init__(self, settings: Settings) -> None:
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

    def _session(self) -> Any:
        odoo = getattr(self._local, "odoo", None)
        if odoo is not None:
            return odoo
        if self._login_rejected is not None:
            raise OdooLoginRejected(self._login_rejected)
        s = self._settings
        odoo = odoorpc.ODOO(
            self._host,
            protocol=self._protocol,
            port=self._port,
            timeout=s.odoo_timeout,
            version=s.odoo_version,
        )
        # Odoo 14+ accepts an API key in place of the password on JSON-RPC.
        secret = s.odoo_password.get_secret_value() or s.odoo_api_key.get_secret_value()
        try:
            odoo.login(s.odoo_db, s.odoo_user, secret)
        except RPCError as exc:
            self._login_rejected = (
                f"Odoo rejected the worker's login for user '{s.odoo_user}' on database "
                f"'{s.odoo_db}' ({exc}). Fix ODOO_USER/ODOO_PASSWORD (or ODOO_API_KEY) and restart the workers; "
                "logins are not retried automatically because Odoo locks out the whole IP."
            )
            log.error("odoo login rejected user=%s db=%s", s.odoo_user, s.odoo_db)
            raise OdooLoginRejected(self._login_rejected) from None
        log.info("odoo session opened user=%s db=%s url=%s", s.odoo_user, s.odoo_db, s.odoo_url)
        self._local.odoo = odoo
        return odoo

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        return self._session().execute_kw(model, method, args, kwargs or {})
