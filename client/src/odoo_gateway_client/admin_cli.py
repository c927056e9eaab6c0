"""``gwctl failed``: the operators' commands (list failed tasks, retry them) over the
gateway's ``/v1/admin`` API, with the admin token (``--admin-token`` or
``GATEWAY_ADMIN_TOKEN``), never a tenant's."""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any
from urllib.parse import quote

import httpx

__all__ = ["add_failed_command", "run_failed"]

EXIT_OK, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_AUTH, EXIT_NOT_FOUND = 0, 2, 3, 4, 5


class AdminError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def add_failed_command(commands: Any, common: argparse.ArgumentParser) -> None:
    failed = commands.add_parser("failed", parents=[common], help="operators: list or retry failed tasks")
    failed.add_argument("--admin-token", default=argparse.SUPPRESS, help="operators' token (GATEWAY_ADMIN_TOKEN)")
    actions = failed.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="failed tasks, newest first")
    listing.add_argument("--tenant", help="only this tenant's (default: every tenant's)")
    listing.add_argument("--limit", type=int, default=50, help="at most this many (1-1000, default 50)")
    listing.add_argument("--json", action="store_true", help="print the API's JSON")
    retry = actions.add_parser("retry", help="run failed tasks again (each as its next attempt)")
    retry.add_argument("task_ids", nargs="+", metavar="TASK_ID")


def _request(method: str, url: str, token: str, **kwargs: Any) -> httpx.Response:
    try:
        response = httpx.request(method, url, headers={"Authorization": f"Bearer {token}"}, timeout=30.0, **kwargs)
    except httpx.TransportError as exc:
        raise AdminError(f"gateway unreachable at {url}: {exc or type(exc).__name__}", EXIT_UNREACHABLE) from None
    if response.status_code == 401:
        raise AdminError("the gateway refused the admin token (HTTP 401)", EXIT_AUTH)
    return response


def _message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(timestamp))


def _table(tasks: list[dict[str, Any]]) -> str:
    header = ("TASK", "TENANT", "KIND", "ATTEMPTS", "FAILED AT (UTC)", "ERROR")
    rows = [
        (
            t["task_id"],
            t["tenant"],
            t["kind"],
            str(t["attempts"]),
            _when(t["updated_at"]),
            f"{(t.get('error') or {}).get('code', '-')}: {(t.get('error') or {}).get('message', '')}"[:80],
        )
        for t in tasks
    ]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows))


def _list(args: argparse.Namespace, base: str, token: str) -> int:
    params: dict[str, str | int] = {"limit": args.limit}
    if args.tenant:
        params["tenant"] = args.tenant
    response = _request("GET", f"{base}/v1/admin/failed", token, params=params)
    if response.status_code != 200:
        raise AdminError(f"the gateway answered {_message(response)}", EXIT_INPUT)
    tasks = response.json()["tasks"]
    if args.json:
        print(json.dumps(tasks, indent=2, sort_keys=True))
    elif tasks:
        print(_table(tasks))
    else:
        print("no failed tasks" + (f" for tenant {args.tenant}" if args.tenant else ""))
    return EXIT_OK


def _retry(args: argparse.Namespace, base: str, token: str) -> int:
    worst = EXIT_OK
    for task_id in args.task_ids:
        response = _request("POST", f"{base}/v1/admin/tasks/{quote(task_id, safe='')}/retry", token)
        if response.status_code == 202:
            task = response.json()
            print(f"{task_id}  reopened: {task['status']} (seq {task['seq']}), tenant {task['tenant']}")
            continue
        print(f"{task_id}  not retried: {_message(response)}")
        code = (
            EXIT_NOT_FOUND
            if response.status_code == 404
            else EXIT_UNREACHABLE
            if response.status_code >= 500
            else EXIT_INPUT
        )
        worst = max(worst, code)
    return worst


def run_failed(args: argparse.Namespace, base: str) -> int:
    """Raises :class:`AdminError` for what stops the whole command."""
    token = getattr(args, "admin_token", None) or os.environ.get("GATEWAY_ADMIN_TOKEN")
    if not token:
        raise AdminError("no admin token: pass --admin-token or set GATEWAY_ADMIN_TOKEN", EXIT_INPUT)
    if args.action == "list":
        return _list(args, base, token)
    return _retry(args, base, token)
