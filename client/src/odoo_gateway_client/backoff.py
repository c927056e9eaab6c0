"""Capped exponential backoff with full jitter.

Full jitter (a uniform draw in ``[0, min(cap, base * 2**attempt)]``) rather than a fixed
exponential schedule: after a gateway restart, hundreds of field devices drop at the same
moment, and without jitter they would all come back in the same instants as well.
"""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]

_MAX_EXPONENT = 30  # 2**30 * base is far above any cap; avoids float overflow on long outages


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 20.0, rng: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap <= 0:
            raise ValueError("backoff base and cap must be positive")
        self.base = base
        self.cap = cap
        self.attempt = 0
        self._rng = rng

    def ceiling(self, attempt: int | None = None) -> float:
        """The largest delay the given (default: next) attempt can draw."""
        n = self.attempt if attempt is None else attempt
        return float(min(self.cap, self.base * 2 ** min(n, _MAX_EXPONENT)))

    def next_delay(self) -> float:
        delay = self.ceiling() * self._rng()
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
