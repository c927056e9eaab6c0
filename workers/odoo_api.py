"""Which Odoo API the workers speak (``ODOO_API``): JSON-RPC (odoorpc), JSON-2, or ``auto``.

``auto`` asks the server's version once per worker process, without logging in:
``GET /web/version`` (served by Odoo's ``rpc`` addon since saas~18.4, the release that
brought JSON-2; ``addons/rpc/controllers/__init__.py``) answers
``{"version_info": [19, 0, 0, "final", 0, ""], "version": "19.0"}``. An older Odoo has no
such route (404): JSON-RPC. JSON-2 is picked where the server offers it and an API key is
configured; without a key the worker stays on JSON-RPC and says so in its log.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from shared.config import Settings
from shared.errors import ConfigurationError, RetryableTaskError
from shared.kinds import OdooCall
from workers.odoo_client import OdooRpcClient
from workers.odoo_json2 import Json2Client, json2_timeout

__all__ = [
    "JSON2_SINCE",
    "AutoOdooClient",
    "OdooAdapter",
    "check_odoo_settings",
    "offers_json2",
    "open_odoo",
    "parse_version",
    "probe_version",
]

log = logging.getLogger(__name__)

#: The first Odoo release with ``/json/2`` (saas~18.4; GA in 19.0).
JSON2_SINCE = (18, 4)


class OdooAdapter(OdooCall, Protocol):
    @property
    def api(self) -> str: ...  # "jsonrpc" or "json2" ("auto" until AutoOdooClient has chosen)


def parse_version(payload: Any) -> tuple[int, int] | None:
    """(major, minor) from ``/web/version``'s JSON; ``"saas~18"``-style majors count as 18."""
    if not isinstance(payload, dict):
        return None
    info = payload.get("version_info")
    if isinstance(info, list) and len(info) >= 2 and isinstance(info[1], int):
        match = re.search(r"\d+", str(info[0]))
        if match:
            return int(match.group()), info[1]
    match = re.search(r"(\d+)\.(\d+)", str(payload.get("version", "")))
    return (int(match.group(1)), int(match.group(2))) if match else None


def offers_json2(version: tuple[int, int] | None) -> bool:
    return version is not None and version >= JSON2_SINCE


def probe_version(settings: Settings, transport: httpx.BaseTransport | None = None) -> tuple[int, int] | None:
    """The server's version, or None if it has no ``/web/version`` (older than saas~18.4).

    Raises :class:`RetryableTaskError` when the server cannot tell (unreachable, 5xx): a GET
    changes nothing in Odoo, so the task is simply retried later."""
    url = settings.odoo_url.rstrip("/") + "/web/version"
    try:
        with httpx.Client(timeout=json2_timeout(min(settings.odoo_timeout, 30.0)), transport=transport) as http:
            response = http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise RetryableTaskError(
            f"Could not ask Odoo for its version at {url} ({type(exc).__name__}); will retry.", code="odoo_unreachable"
        ) from None
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RetryableTaskError(
            f"Odoo answered HTTP {response.status_code} to {url}; will retry.", code="odoo_unavailable"
        )
    try:
        return parse_version(response.json())
    except ValueError:
        return None


class AutoOdooClient:
    """``ODOO_API=auto``: the first call learns the server's version, then every call goes
    to the adapter it chose (``api`` says which, once known)."""

    def __init__(
        self,
        settings: Settings,
        probe: Callable[[Settings], tuple[int, int] | None] = probe_version,
        json2: Callable[[Settings], OdooAdapter] = Json2Client,
        jsonrpc: Callable[[Settings], OdooAdapter] = OdooRpcClient,
    ) -> None:
        self._settings = settings
        self._probe, self._json2, self._jsonrpc = probe, json2, jsonrpc
        self._lock = threading.Lock()
        self._chosen: OdooAdapter | None = None

    @property
    def api(self) -> str:
        return self._chosen.api if self._chosen is not None else "auto"

    def _adapter(self) -> OdooAdapter:
        chosen = self._chosen
        if chosen is not None:
            return chosen
        with self._lock:
            if self._chosen is None:
                self._chosen = self._choose()
            return self._chosen

    def _choose(self) -> OdooAdapter:
        s = self._settings
        version = self._probe(s)
        shown = f"{version[0]}.{version[1]}" if version else "older than 18.4"
        if offers_json2(version) and s.odoo_api_key.get_secret_value():
            log.info("odoo %s offers JSON-2: using it (ODOO_API=auto)", shown)
            return self._json2(s)
        if offers_json2(version):
            log.warning(
                "odoo %s offers JSON-2 but ODOO_API_KEY is empty: staying on JSON-RPC, which Odoo 22 removes", shown
            )
        else:
            log.info("odoo %s has no JSON-2: using JSON-RPC (ODOO_API=auto)", shown)
        if version is not None:
            s = s.model_copy(update={"odoo_version": f"{version[0]}.{version[1]}"})
        return self._jsonrpc(s)

    def execute_kw(self, model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> Any:
        return self._adapter().execute_kw(model, method, args, kwargs)


def check_odoo_settings(settings: Settings) -> None:
    """Refuse at start what cannot work: JSON-2 without an API key."""
    if settings.odoo_api == "json2" and not settings.odoo_api_key.get_secret_value():
        raise ConfigurationError(
            "ODOO_API=json2 needs ODOO_API_KEY, an API key of the worker user (README 'Odoo APIs')."
        )


def open_odoo(settings: Settings) -> OdooAdapter:
    """The adapter ``ODOO_API`` names. Connects lazily: nothing is sent to Odoo here."""
    if settings.odoo_api == "json2":
        return Json2Client(settings)
    if settings.odoo_api == "auto":
        return AutoOdooClient(settings)
    return OdooRpcClient(settings)
