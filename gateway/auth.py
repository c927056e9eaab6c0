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
    So: no Origin -> allowed; an Origin -> must be in the allow-list."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = {origin.rstrip("/").lower() for origin in allowed}

    def allows(self, origin: str | None) -> bool:
        return origin is None or origin.rstrip("/").lower() in self._allowed
