"""Task events are signed by the workers and verified by the gateways.

Anyone who can publish to the broker could otherwise write a task's outcome: one hand-made
``succeeded`` event would be stored, pushed to the client, and make the worker skip the real
write. The signature is an HMAC-SHA256 of the message body (which names the task and its
seq, so a signature can't be moved to another event) under ``EVENT_SIGNING_KEY``, a secret
shared by workers and gateways only. It travels in an AMQP header, so the body stays the
event's JSON and the management console still shows it readably.
"""

from __future__ import annotations

import hashlib
import hmac

from shared.config import Settings
from shared.errors import ConfigurationError

__all__ = ["MIN_KEY_BYTES", "SIGNATURE_HEADER", "EventSigner"]

SIGNATURE_HEADER = "x-event-signature"
MIN_KEY_BYTES = 16
_SCHEME = "hmac-sha256="


class EventSigner:
    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ConfigurationError(
                f"EVENT_SIGNING_KEY must be at least {MIN_KEY_BYTES} bytes, the same on gateways and workers "
                "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
            )
        self._key = key

    @classmethod
    def from_settings(cls, settings: Settings) -> EventSigner:
        return cls(settings.event_signing_key.get_secret_value().encode())

    def sign(self, body: bytes) -> str:
        return _SCHEME + hmac.new(self._key, body, hashlib.sha256).hexdigest()

    def verify(self, body: bytes, signature: object) -> bool:
        """True only for a signature this key made for exactly this body."""
        if not isinstance(signature, str | bytes):
            return False
        if isinstance(signature, bytes):
            signature = signature.decode("ascii", "replace")
        return hmac.compare_digest(signature.encode(), self.sign(body).encode())
