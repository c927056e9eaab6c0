"""Who is calling: bearer tokens mapped to principals, and the WebSocket Origin check.

Tokens are kept only as SHA-256 digests, so a memory dump or a log line never shows one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

__all__ = ["Authenticator", "OriginPolicy", "bearer_token"]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


class Authenticator:
    def __init__(self, tokens: Mapping[str, str]) -> None:
        self._principals = {_digest(token): principal for token, principal in tokens.items()}

    def principal(self, token: str | None) -> str | None:
        if not token:
            return None
        return self._principals.get(_digest(token))


class OriginPolicy:
    """Browsers always send ``Origin`` on a WebSocket handshake; non-browser clients
    (devices, scripts) usually don't, and can't be tricked into cross-site requests.
    So: no Origin -> allowed; the gateway's own origin (its demo page) -> allowed; any
    other Origin -> must be in the allow-list (cross-site WebSocket hijacking defence)."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = {origin.rstrip("/").lower() for origin in allowed}

    def allows(self, origin: str | None, host: str | None = None) -> bool:
        if origin is None:
            return True
        origin = origin.rstrip("/").lower()
        if origin in self._allowed:
            return True
        # Same origin: the page was served by this gateway (scheme-agnostic: TLS may
        # end at a proxy in front of it).
        return host is not None and origin.split("://", 1)[-1] == host.lower()
