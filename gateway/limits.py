"""Rate bounds on what one peer can make the gateway do. Plain code, no I/O, clock injected.

- :class:`TokenBucket`: frames and resumed task ids per socket. A rate of 0 means no bound.
- :class:`FailureThrottle`: failed authentications per peer address in a fixed one-minute
  window; it remembers at most ``max_peers`` addresses (oldest forgotten first), so a
  flood of addresses costs bounded memory.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["FailureThrottle", "TokenBucket"]

Clock = Callable[[], float]


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up (a full bucket to start)."""

    __slots__ = ("rate", "burst", "_clock", "_tokens", "_at")

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(burst, 1.0)
        self._clock = clock
        self._tokens = self.burst
        self._at = clock()

    def take(self, count: float = 1.0) -> bool:
        if self.rate <= 0:
            return True
        self._refill()
        if count > self._tokens:
            return False
        self._tokens -= count
        return True

    def wait_for(self, count: float = 1.0) -> float:
        """Seconds until ``count`` tokens will be there (0 if they are now)."""
        if self.rate <= 0:
            return 0.0
        self._refill()
        return max(0.0, (min(count, self.burst) - self._tokens) / self.rate)

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now


class FailureThrottle:
    WINDOW_SECONDS = 60.0

    def __init__(self, per_minute: int, max_peers: int = 10_000, clock: Clock = time.monotonic) -> None:
        self.per_minute = per_minute
        self._max_peers = max_peers
        self._clock = clock
        self._windows: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def blocked_for(self, peer: str) -> int:
        """Whole seconds ``peer`` must wait before it may try again (0: it may now)."""
        if self.per_minute <= 0:
            return 0
        window = self._current(peer)
        if window is None or window[1] < self.per_minute:
            return 0
        return max(1, math.ceil(window[0] + self.WINDOW_SECONDS - self._clock()))

    def record_failure(self, peer: str) -> int:
        """Count one failure; the number of failures in ``peer``'s current window."""
        window = self._current(peer)
        started, failures = window if window is not None else (self._clock(), 0)
        self._windows[peer] = (started, failures + 1)
        self._windows.move_to_end(peer)
        while len(self._windows) > self._max_peers:
            self._windows.popitem(last=False)
        return failures + 1

    def _current(self, peer: str) -> tuple[float, int] | None:
        window = self._windows.get(peer)
        if window is not None and self._clock() - window[0] >= self.WINDOW_SECONDS:
            del self._windows[peer]
            return None
        return window
