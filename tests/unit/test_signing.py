"""Event signatures: only the key's holder can make one, for exactly one body."""

from __future__ import annotations

import pytest

from shared.config import Settings
from shared.errors import ConfigurationError
from shared.signing import EventSigner

KEY = b"k" * 32


def test_a_signature_verifies_only_for_its_body_and_key() -> None:
    signer = EventSigner(KEY)
    body = b'{"task_id":"t1","seq":4,"status":"succeeded"}'
    signature = signer.sign(body)
    assert signer.verify(body, signature)
    assert signer.verify(body, signature.encode())  # AMQP headers may arrive as bytes
    assert not signer.verify(body.replace(b"t1", b"t2"), signature)
    assert not EventSigner(b"x" * 32).verify(body, signature)
    for forged in (None, "", 42, "hmac-sha256=" + "0" * 64, signature.upper()):
        assert not signer.verify(body, forged)


@pytest.mark.parametrize("key", ["", "short"])
def test_a_missing_or_short_key_is_refused_at_start(key: str) -> None:
    with pytest.raises(ConfigurationError, match="EVENT_SIGNING_KEY"):
        EventSigner.from_settings(Settings.from_env({"EVENT_SIGNING_KEY": key}))
