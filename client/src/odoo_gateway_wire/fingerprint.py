"""What makes two submissions "the same": one idempotency key may only ever name one.

The gateway compares fingerprints to tell a replay (same key, same submission: the same
task again) from a reused key (same key, another submission: refused with
``idempotency_key_reused``); the client compares them to refuse the reuse locally, before
anything is written to its outbox.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

__all__ = ["canonical_submission", "fingerprint"]


def canonical_submission(kind: str | None, payload: Any) -> str:
    """One spelling of a submission: keys sorted, no spaces (so key order never matters)."""
    return json.dumps({"kind": kind, "payload": payload}, sort_keys=True, separators=(",", ":"))


def fingerprint(kind: str | None, payload: Any) -> str:
    return hashlib.sha256(canonical_submission(kind, payload).encode()).hexdigest()
