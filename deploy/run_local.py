"""``make run``: the whole system on one machine, supervised.

Starts the Odoo stand-in (unless ODOO_URL is set), one Dramatiq worker process and the
gateway, with the embedded SQLite store and the local RabbitMQ. A worker that dies is
restarted (as a process supervisor would in production); Ctrl-C stops everything.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    # The development credential exists only here, never in the code.
    env.setdefault("GATEWAY_TOKENS", "dev-token=demo")
    env.setdefault("GATEWAY_DEMO_TOKEN", "dev-token")  # pre-filled on the page at /, only here
    env.setdefault("GATEWAY_SHUTDOWN_DRAIN_SECONDS", "1")  # no load balancer to wait for
    env.setdefault("GATEWAY_ADMIN_TOKEN", "dev-admin-token")  # gwctl failed ..., only here
    # A fresh key per run: the gateway and the worker it starts share it, nobody else.
    env.setdefault("EVENT_SIGNING_KEY", secrets.token_urlsafe(32))
    env.setdefault("GATEWAY_ALLOWED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")
    env.setdefault("DATABASE_URL", "sqlite:///var/gateway.sqlite3")
    env.setdefault("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    env.setdefault("ODOO_DB", "odoo")
    env.setdefault("ODOO_USER", "admin")
    env.setdefault("ODOO_PASSWORD", "admin")
    env.setdefault("ODOO_TIMEOUT", "30")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def main() -> int:
    env = _environment()
    amqp = urlsplit(env["AMQP_URL"])
    host, port = amqp.hostname or "127.0.0.1", amqp.port or 5672
    if not _reachable(host, port):
        print(
            f"RabbitMQ is not reachable at {host}:{port} (AMQP_URL). "
            "Start it with `rabbitmq-server -detached` and run `make run` again.",
            file=sys.stderr,
        )
        return 1
    commands: dict[str, list[str]] = {}
    if not env.get("ODOO_URL"):
        env["ODOO_URL"] = "http://127.0.0.1:8069"
        commands["odoo-standin"] = [PY, "-m", "tests.odoo_standin", "--port", "8069"]
    commands["worker"] = [PY, "-m", "dramatiq", "workers.actors", "--processes", "1", "--threads", "4"]
    commands["gateway"] = [PY, "-m", "gateway"]
    procs = {name: subprocess.Popen(cmd, cwd=ROOT, env=env) for name, cmd in commands.items()}
    print(
        f"gateway on http://{env.get('GATEWAY_HOST', '127.0.0.1')}:{env.get('GATEWAY_PORT', '8000')} "
        f"(token dev-token, tenant demo; admin token {env['GATEWAY_ADMIN_TOKEN']}); Odoo at {env['ODOO_URL']}; "
        "Ctrl-C stops",
        flush=True,
    )
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    code = 0
    while not stopping:
        time.sleep(0.5)
        for name, proc in list(procs.items()):
            if proc.poll() is None:
                continue
            if name == "worker":
                print(f"worker exited with {proc.returncode}; restarting", file=sys.stderr, flush=True)
                procs[name] = subprocess.Popen(commands[name], cwd=ROOT, env=env)
            else:
                print(f"{name} exited with {proc.returncode}; stopping", file=sys.stderr, flush=True)
                stopping, code = True, 1
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    for proc in procs.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
    return code


if __name__ == "__main__":
    sys.exit(main())
