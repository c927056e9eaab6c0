"""What the benchmarks share: percentiles and a process's CPU time as the kernel counts it."""

from __future__ import annotations

import os

from tests.support.processes import child_pids

__all__ = ["cpu_seconds", "percentile_ms", "rss_kib"]


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid`` (all its threads) and its live children
    (``GATEWAY_WORKERS`` > 1 runs the gateway in child processes)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child) for child in child_pids(pid))


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB, as the kernel reports it."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """The ``q`` quantile of ``seconds``, in milliseconds (None for no samples)."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)
