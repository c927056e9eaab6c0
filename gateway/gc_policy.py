"""The cyclic garbage collector's settings for a process that holds thousands of sockets.

Each connection leaves a few hundred long-lived container objects (uvicorn's protocol, the
scope, the task running the endpoint, the session) and Python's collector, at its
defaults, runs a collection every 700 net allocations and a full one each time the heap
has grown by a quarter. During a reconnect storm (README "Performance", item 4) the full
collections re-scan every socket already open and the modules loaded at start, over and
over: in-process, 5,000 handshakes and resumes spent about a third of their CPU in them.

So, once the app has started: what exists then (modules, settings, pydantic schemas) is
moved out of the collector's sight (:func:`gc.freeze`; it lives as long as the process
anyway), and the youngest generation is collected every ``YOUNG_THRESHOLD`` allocations
instead of 700. Garbage cycles are still collected, later: at most that many more
container objects wait for it, a few MiB, whatever the number of sockets.
"""

from __future__ import annotations

import gc

__all__ = ["YOUNG_THRESHOLD", "settle_heap"]

YOUNG_THRESHOLD = 10_000
_settled = False


def settle_heap() -> None:
    """After start-up: freeze what start-up made, then collect the young generation less
    often (the older two keep their default ratios). Once per process: an app started
    again in the same process (tests) must not freeze what the earlier one left."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
