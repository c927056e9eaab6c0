"""Who is calling: bearer tokens mapped to principals, failed-login throttling per peer
address, and the WebSocket Origin check. One owner for both HTTP and WebSocket.

Tokens are kept only as SHA-256 digests, so a memory dump or a log line never shows one.
Tokens are read from the ``Authorization`` header or the WebSocket ``auth`` frame only,
never from a query string (which proxies and access logs record).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping

from gateway.limits import FailureThrottle
from shared.errors import AuthenticationFailed, RateLimited

__all__ = ["Authenticator", "OriginPolicy", "bearer_token"]

log = logging.getLogger(__name__)


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
    def __init__(self, tokens: Mapping[str, str], failures_per_minute: int = 0) -> None:
        self._principals = {_digest(token): principal for token, principal in tokens.items()}
        self.throttle = FailureThrottle(failures_per_minute)

    def principal(self, token: str | None) -> str | None:
        if not token:
            return None
        return self._principals.get(_digest(token))

    def authenticate(self, token: str | None, peer: str) -> str:
        """The principal ``token`` stands for. Raises :class:`RateLimited` while ``peer`` has
        failed too often this minute (checked first, so guessing stops costing us digests),
        else :class:`AuthenticationFailed` for a missing or unknown token."""
        wait = self.throttle.blocked_for(peer)
        if wait:
            raise RateLimited(
                f"Too many failed authentications from this address; retry in {wait} s.", retry_after_seconds=wait
            )
        principal = self.principal(token)
        if principal is not None:
            return principal
        failures = self.throttle.record_failure(peer)
        limit = self.throttle.per_minute
        if limit and failures == limit:
            log.warning("auth throttled peer=%s failures=%d in %ds", peer, failures, FailureThrottle.WINDOW_SECONDS)
        elif not limit or failures < limit:
            log.warning(
                "auth failed peer=%s failures=%d token=%s", peer, failures, "absent" if not token else "unknown"
            )
        raise AuthenticationFailed("A valid bearer token is required.")


class OriginPolicy:
    """Browsers always send ``Origin`` on a WebSocket handshake; non-browser clients
    (devices, scripts) usually don't, and can't be tricked into cross-site requests.
    So: no Origin -> allowed; any Origin -> must be in the allow-list (cross-site WebSocket
    hijacking defence). The page this gateway serves is no exception: comparing Origin to
    the request's own Host would let a DNS-rebinding site (whose name now points here)
    pass, since its Origin and Host agree."""

    def __init__(self, allowed: Iterable[str]) -> None:
        self._allowed = {origin.rstrip("/").lower() for origin in allowed}

    def allows(self, origin: str | None) -> bool:
        if origin is None:
            return True
        return origin.rstrip("/").lower() in self._allowed
