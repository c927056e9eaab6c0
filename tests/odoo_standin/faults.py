"""Fault rules: the transport and server failures the gateway must survive.

Each rule matches a call by ``model``/``method`` (``None`` = any). Service-level calls use the
service as the model (``common.login`` -> model ``"common"``, method ``"login"``; ``db.list`` ->
``"db"``/``"list"``; ``/web/webclient/version_info`` -> ``"web"``/``"version_info"``).
Rules are checked in insertion order; the first match fires and uses up one of its ``times``
(``-1`` = forever); a rule whose count reaches zero is removed.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal

FaultKind = Literal["error", "http_status", "reset", "delay", "commit_then_drop", "non_json"]
FAULT_KINDS: frozenset[str] = frozenset({"error", "http_status", "reset", "delay", "commit_then_drop", "non_json"})
FaultPhase = Literal["before", "inside", "after"]
FAULT_PHASES: frozenset[str] = frozenset({"before", "inside", "after"})


@dataclass
class FaultRule:
    """One injected failure.

    kind:
      ``error``            answer an Odoo JSON-RPC error (``error_name``, ``message``);
                           nothing is executed
      ``http_status``      answer HTTP ``status`` (502/503/504...) with an HTML body;
                           nothing is executed
      ``reset``            abort the TCP connection with RST, execute nothing
      ``delay``            sleep ``seconds``; ``phase="before"`` (default) before executing,
                           ``phase="after"`` after committing and before answering,
                           ``phase="inside"`` with the transaction open: an ``object`` call takes
                           its snapshot, sleeps (outside the global lock, so other calls commit
                           meanwhile), then runs against that snapshot, and fails with
                           ``SerializationFailure`` (retried per the stand-in's settings) if it
                           writes a row committed in between (see ``concurrency.py``); the
                           delay holds the first try only. Other services: same as ``before``
      ``commit_then_drop`` execute and commit, then abort the connection with RST (lost reply)
      ``non_json``         answer HTTP 200 with an HTML body, execute nothing
    """

    kind: FaultKind
    model: str | None = None
    method: str | None = None
    times: int = 1
    error_name: str = "odoo.exceptions.UserError"
    message: str = "Injected fault"
    status: int = 502
    seconds: float = 1.0
    phase: FaultPhase = "before"

    def __post_init__(self) -> None:
        # Validate eagerly: a typo in a test's fault should fail at add_fault, not silently never
        # fire (which would make a resilience test pass for the wrong reason).
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")
        if self.times == 0 or self.times < -1:
            raise ValueError("times must be a positive count or -1 (forever)")
        if self.phase not in FAULT_PHASES:
            raise ValueError(f"phase must be one of {sorted(FAULT_PHASES)}, got {self.phase!r}")
        if self.phase == "inside" and self.kind != "delay":
            raise ValueError("phase 'inside' only applies to kind 'delay'")
        if self.kind == "http_status" and not 100 <= int(self.status) <= 599:
            raise ValueError("status must be an HTTP status code")
        if self.seconds < 0:
            raise ValueError("seconds must be >= 0")

    def matches(self, model: str | None, method: str | None) -> bool:
        return (self.model is None or self.model == model) and (self.method is None or self.method == method)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FaultRule:
        """Build a rule from JSON (the HTTP control endpoint); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown FaultRule fields: {sorted(unknown)}")
        if "kind" not in data:
            raise ValueError("FaultRule needs a 'kind'")
        return cls(**data)


class FaultBook:
    """Thread-safe ordered list of rules (handler threads consume them concurrently)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(replace(rule))  # own copy: the caller may reuse its object

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def pending(self) -> list[FaultRule]:
        with self._lock:
            return [replace(r) for r in self._rules]

    def take(self, model: str | None, method: str | None) -> FaultRule | None:
        """Return (a copy of) the first matching rule and use up one of its shots."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if not rule.matches(model, method):
                    continue
                if rule.times > 0:
                    rule.times -= 1
                    if rule.times == 0:
                        del self._rules[index]
                return replace(rule, times=1)
        return None
