"""The system's processes, started for real: gateway instances (uvicorn) and Dramatiq
workers, each with its own log file kept for a failing test to show."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from shared.names import TASK_QUEUE
from tests.support.services import queue_counts

__all__ = ["ROOT", "Proc", "child_pids", "free_port", "start_gateway", "start_worker"]

ROOT = Path(__file__).resolve().parents[2]


#: Ports handed out by this process, never handed twice.
_HANDED: set[int] = set()
_LOWEST = 20000


def _ephemeral_low() -> int:
    """The lowest port the kernel gives outgoing connections (Linux; 32768 elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A free port for a server of the tests to listen on, below the kernel's ephemeral
    range: a port from that range (what binding to port 0 gives) can be taken meanwhile as
    the local port of any outgoing connection, and the server then fails to bind
    ("address already in use"), as a chaos run once did."""
    high = _ephemeral_low() - 1
    for _ in range(200 if high > _LOWEST else 0):
        port = random.randint(_LOWEST, high)
        if port in _HANDED:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED.add(port)
        return port
    with socket.socket() as sock:  # no room below the range: the kernel's choice
        sock.bind(("127.0.0.1", 0))
        chosen: int = sock.getsockname()[1]
        return chosen


class Proc:
    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}-{time.time_ns()}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self, tail: int = 60) -> str:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return "\n".join(lines[-tail:])

    def stop(self, timeout: float = 15.0) -> None:
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self._log.close()

    def kill(self) -> None:
        """SIGKILL the whole process group (the process and its children)."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        self._log.close()


def child_pids(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(p) for p in path.read_text().split()]
    except OSError:
        return []


def _wait(predicate: object, what: str, proc: Proc, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.log()}")
        try:
            if predicate():  # type: ignore[operator]
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name}: {what} not reached in {timeout}s:\n{proc.log()}")


def start_gateway(
    env: dict[str, str], log_dir: Path, port: int | None = None, name: str = "gateway", ready: bool = True
) -> tuple[Proc, str]:
    """Start ``python -m gateway``; wait for /readyz (or only /healthz if ``ready`` is False)."""
    port = port or free_port()
    proc = Proc(name, [sys.executable, "-m", "gateway"], {**env, "GATEWAY_PORT": str(port)}, log_dir)
    base = f"http://127.0.0.1:{port}"
    path = "/readyz" if ready else "/healthz"
    # Our gateway's own answer, not that of another server that took the port meanwhile.
    key, expected = ("ready", True) if ready else ("status", "ok")
    _wait(lambda: httpx.get(f"{base}{path}", timeout=1).json().get(key) == expected, path, proc, 30)
    return proc, base


def start_worker(
    env: dict[str, str], log_dir: Path, threads: int = 4, name: str = "worker", processes: int = 1
) -> Proc:
    cmd = [sys.executable, "-m", "dramatiq", "workers.actors", "--processes", str(processes), "--threads", str(threads)]
    proc = Proc(name, cmd, env, log_dir)
    _wait(lambda: queue_counts(env["AMQP_URL"], TASK_QUEUE)[1] >= 1, "a consumer on the task queue", proc, 30)
    metrics_port = env.get("WORKER_METRICS_PORT", "")
    if metrics_port not in ("", "0"):
        # Bound before anything else asks for a free port: free_port() could hand the same
        # one out again while the worker's metrics server had yet to bind it.
        url = f"http://127.0.0.1:{metrics_port}/metrics"
        _wait(lambda: httpx.get(url, timeout=1).status_code == 200, "the worker's metrics", proc, 30)
    return proc
