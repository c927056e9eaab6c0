"""gwctl: submit tasks to the gateway, follow them, and look into the local outbox.

Errors are one line on stderr (``gwctl: error: ...``), never a traceback (``-v`` shows one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import sys
import traceback
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from odoo_gateway_client.admin_cli import AdminError, add_failed_command, run_failed
from odoo_gateway_client.connection import GatewayClient
from odoo_gateway_client.errors import AuthenticationError, SubmissionRejected, TaskNotFound
from odoo_gateway_client.handle import TaskEvent, TaskHandle
from odoo_gateway_client.outbox import Outbox, OutboxEntry
from odoo_gateway_client.status import TaskStatus

__all__ = ["main"]

T = TypeVar("T")
EXIT_OK, EXIT_TASK_FAILED, EXIT_INPUT, EXIT_UNREACHABLE, EXIT_AUTH, EXIT_NOT_FOUND = 0, 1, 2, 3, 4, 5
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_OUTBOX = "~/.local/state/gwctl/outbox.sqlite3"

EPILOG = """\
configuration: --url or GATEWAY_URL (default http://127.0.0.1:8000), --token or GATEWAY_TOKEN,
  --outbox or GWCTL_OUTBOX (default ~/.local/state/gwctl/outbox.sqlite3)
exit codes: 0 done (task succeeded), 1 task failed, 2 bad input or submission rejected,
  3 gateway unreachable or no answer in time, 4 token refused, 5 no such task
"""


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Config:
    url: str
    token: str | None
    outbox: Path

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Config:
        url = getattr(args, "url", None) or os.environ.get("GATEWAY_URL") or DEFAULT_URL
        token = getattr(args, "token", None) or os.environ.get("GATEWAY_TOKEN") or None
        outbox = getattr(args, "outbox", None) or os.environ.get("GWCTL_OUTBOX") or DEFAULT_OUTBOX
        return cls(url.rstrip("/"), token, Path(outbox).expanduser())

    def need_token(self) -> str:
        if not self.token:
            raise CliError("no token: pass --token or set GATEWAY_TOKEN", EXIT_INPUT)
        return self.token


def _load_payload(args: argparse.Namespace) -> dict[str, Any]:
    try:
        text = Path(args.file).read_text() if args.file else args.payload
    except OSError as exc:
        raise CliError(f"cannot read the payload file: {exc.strerror}: {args.file}", EXIT_INPUT) from None
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"invalid payload: not JSON ({exc.msg} at line {exc.lineno})", EXIT_INPUT) from None
    if not isinstance(payload, dict):
        raise CliError("invalid payload: it must be a JSON object", EXIT_INPUT)
    return payload


def _open_client(cfg: Config, args: argparse.Namespace) -> GatewayClient:
    try:
        return GatewayClient(cfg.url, cfg.need_token(), cfg.outbox, prefer_http=getattr(args, "http", False))
    except ValueError as exc:
        raise CliError(str(exc), EXIT_INPUT) from None
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        raise CliError(f"cannot open the outbox {cfg.outbox}: {exc}", EXIT_INPUT) from None


def _rejection(err: SubmissionRejected) -> str:
    text = f"{err.code}: {err.message}"
    if isinstance(err.details, list):
        fields = [
            f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}" for d in err.details if isinstance(d, dict)
        ]
        if fields:
            text += " (" + "; ".join(fields) + ")"
    return text


def progress_line(event: TaskEvent) -> str:
    line = f"[{event.seq}] {event.status}"
    if event.attempt:
        line += f" (attempt {event.attempt})"
    if event.error:
        line += f" {event.error.get('code')}: {event.error.get('message')}"
        if event.error.get("retry_in_seconds") is not None:
            line += f"; next try in {float(event.error['retry_in_seconds']):.1f}s"
    if event.result is not None:
        line += " " + json.dumps(event.result, sort_keys=True)
    return line


async def _guarded(client: GatewayClient, work: Awaitable[T], connect_timeout: float, timeout: float | None) -> T:
    """Run ``work``; give up early if no connection was ever made within ``connect_timeout``.
    Errors that stop the client (a refused token) surface through ``work`` itself."""
    task = asyncio.ensure_future(work)
    loop = asyncio.get_running_loop()
    started = loop.time()
    reached = False  # once reached (socket or HTTP poll), later outages are the client's to ride out
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=0.1)
            if done:
                return task.result()
            waited = loop.time() - started
            reached = reached or client.connected or client.connections > 0
            if not reached and waited > connect_timeout:
                reason = f": {client.last_error}" if client.last_error else ""
                raise CliError(f"gateway unreachable at {client.base_url}{reason}", EXIT_UNREACHABLE)
            if timeout is not None and waited > timeout:
                raise TimeoutError
    finally:
        if not task.done():
            task.cancel()
            await asyncio.wait({task})


async def _follow(handle: TaskHandle) -> int:
    async for event in handle.events():
        print(progress_line(event), flush=True)
        if event.final:
            return EXIT_OK if event.status is TaskStatus.SUCCEEDED else EXIT_TASK_FAILED
    raise AssertionError("events() ended without a final event")  # pragma: no cover


async def _submit(args: argparse.Namespace, cfg: Config) -> int:
    payload = _load_payload(args)
    async with _open_client(cfg, args) as client:
        try:
            handle = await client.submit(args.kind, payload)
        except SubmissionRejected as err:
            raise CliError(f"invalid payload: {_rejection(err)}", EXIT_INPUT) from None
        try:
            task_id = await _guarded(client, handle.accepted(), args.connect_timeout, args.timeout)
        except SubmissionRejected as err:
            raise CliError(f"rejected by the gateway: {_rejection(err)}", EXIT_INPUT) from None
        except (CliError, AuthenticationError, TimeoutError) as err:
            raise await _not_accepted(client, handle, err, args.queue) from None
        print(task_id, flush=True)
        if not args.wait:
            return EXIT_OK
        return await _wait_final(client, handle, args, task_id)


async def _not_accepted(client: GatewayClient, handle: TaskHandle, err: Exception, queue: bool) -> CliError:
    if isinstance(err, AuthenticationError):
        what, code = str(err), EXIT_AUTH
    elif isinstance(err, CliError):
        what, code = str(err), err.code
    else:
        what, code = f"no acknowledgement from {client.base_url} in time", EXIT_UNREACHABLE
    # A submission that never left this process is dropped unless asked to queue it, so that
    # running the same command again cannot make it two tasks.
    if not queue and await client.withdraw(handle):
        return CliError(f"{what}; nothing was submitted", code)
    return CliError(
        f"{what}; the submission stays in the outbox (key {handle.key}) and is sent by the next gwctl "
        "command that reaches the gateway (gwctl outbox --send)",
        code,
    )


async def _wait_final(client: GatewayClient, handle: TaskHandle, args: argparse.Namespace, task_id: str) -> int:
    try:
        return await _guarded(client, _follow(handle), args.connect_timeout, args.timeout)
    except TaskNotFound:
        raise CliError(f"no such task: {task_id}", EXIT_NOT_FOUND) from None
    except AuthenticationError as err:
        raise CliError(str(err), EXIT_AUTH) from None
    except TimeoutError:
        raise CliError(
            f"task {task_id} has not ended after {args.timeout} s; follow it with: gwctl watch {task_id}",
            EXIT_UNREACHABLE,
        ) from None


async def _watch(args: argparse.Namespace, cfg: Config) -> int:
    async with _open_client(cfg, args) as client:
        had_row = client.outbox.by_task(args.task_id) is not None
        handle = client.handle_for(args.task_id)
        try:
            return await _wait_final(client, handle, args, args.task_id)
        except CliError:
            if not had_row:
                await client.forget(handle)  # the watch row was only this command's
            raise


def _status(args: argparse.Namespace, cfg: Config) -> int:
    url = f"{cfg.url}/v1/tasks/{quote(args.task_id, safe='')}"
    try:
        response = httpx.get(url, headers={"Authorization": f"Bearer {cfg.need_token()}"}, timeout=10.0)
    except httpx.TransportError as exc:
        raise CliError(f"gateway unreachable at {cfg.url}: {exc or type(exc).__name__}", EXIT_UNREACHABLE) from None
    if response.status_code == 401:
        raise CliError("the gateway refused the token (HTTP 401)", EXIT_AUTH)
    if response.status_code == 404:
        raise CliError(f"no such task: {args.task_id}", EXIT_NOT_FOUND)
    if response.status_code != 200:
        raise CliError(f"the gateway answered HTTP {response.status_code}", EXIT_UNREACHABLE)
    print(json.dumps(response.json(), indent=2, sort_keys=True))
    return EXIT_OK


def _table(entries: Sequence[OutboxEntry]) -> str:
    header = ("KEY", "KIND", "TASK", "STATUS", "SEQ")
    rows = [(e.key or "-", e.kind or "-", e.task_id or "-", e.status, str(e.last_seq)) for e in entries]
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in (header, *rows))


async def _send_outbox(args: argparse.Namespace, cfg: Config) -> None:
    client = _open_client(cfg, args)
    try:
        await client.poll_once()
    except AuthenticationError as err:
        raise CliError(str(err), EXIT_AUTH) from None
    except httpx.TransportError as exc:
        raise CliError(f"gateway unreachable at {cfg.url}: {exc or type(exc).__name__}", EXIT_UNREACHABLE) from None
    finally:
        await client.close()


def _outbox(args: argparse.Namespace, cfg: Config) -> int:
    if args.send:
        asyncio.run(_send_outbox(args, cfg))
    if not cfg.outbox.exists():
        print(f"outbox is empty ({cfg.outbox})")
        return EXIT_OK
    try:
        with Outbox(cfg.outbox) as outbox:
            entries = outbox.entries()
            if not entries:
                print(f"outbox is empty ({cfg.outbox})")
                return EXIT_OK
            print(_table(entries))
            if args.prune:
                for entry in entries:
                    if entry.settled:
                        outbox.remove(entry.id)
    except (OSError, sqlite3.Error, RuntimeError) as exc:
        raise CliError(f"cannot read the outbox {cfg.outbox}: {exc}", EXIT_INPUT) from None
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: the options work before or after the subcommand without one hiding the other.
    common.add_argument("--url", default=argparse.SUPPRESS, help="gateway base URL (GATEWAY_URL)")
    common.add_argument("--token", default=argparse.SUPPRESS, help="bearer token (GATEWAY_TOKEN)")
    common.add_argument("--outbox", default=argparse.SUPPRESS, help="outbox file (GWCTL_OUTBOX)")
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log details")
    parser = argparse.ArgumentParser(
        prog="gwctl",
        description="Submit tasks to the Odoo submission gateway and follow them.",
        parents=[common],
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--timeout", type=float, default=None, help="give up after this many seconds")
    live.add_argument("--connect-timeout", type=float, default=10.0, help="seconds to reach the gateway")
    live.add_argument("--http", action="store_true", help="poll over HTTP instead of a WebSocket")

    submit = commands.add_parser("submit", parents=[common, live], help="submit a task")
    submit.add_argument("kind", help="task kind, e.g. sale.order.create")
    source = submit.add_mutually_exclusive_group(required=True)
    source.add_argument("--payload", help="the payload as inline JSON")
    source.add_argument("--file", help="a file holding the payload JSON")
    submit.add_argument("--wait", action="store_true", help="show progress; exit 0 on succeeded, 1 on failed")
    submit.add_argument(
        "--queue",
        action="store_true",
        help="if the gateway cannot be reached, keep it in the outbox to send later",
    )
    watch = commands.add_parser("watch", parents=[common, live], help="follow a task until it ends")
    watch.add_argument("task_id")
    status = commands.add_parser("status", parents=[common], help="print a task's state as JSON (HTTP)")
    status.add_argument("task_id")
    outbox = commands.add_parser("outbox", parents=[common], help="list what is still in the local outbox")
    outbox.add_argument("--send", action="store_true", help="first send pending submissions and refresh states")
    outbox.add_argument("--prune", action="store_true", help="after listing, remove rows that have ended")
    add_failed_command(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    logging.basicConfig(level=logging.INFO if verbose else logging.CRITICAL, format="gwctl: %(name)s: %(message)s")
    try:
        cfg = Config.from_args(args)
        if args.command == "submit":
            return asyncio.run(_submit(args, cfg))
        if args.command == "watch":
            return asyncio.run(_watch(args, cfg))
        if args.command == "status":
            return _status(args, cfg)
        if args.command == "failed":
            return run_failed(args, cfg.url)
        return _outbox(args, cfg)
    except (CliError, AdminError) as err:
        print(f"gwctl: error: {err}", file=sys.stderr)
        return err.code
    except KeyboardInterrupt:
        print("gwctl: interrupted (submissions in the outbox are kept)", file=sys.stderr)
        return 130
    except Exception as exc:
        # The promise is one line, never a traceback, whatever went wrong (-v shows it).
        if verbose:
            traceback.print_exc()
        print(f"gwctl: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 70


if __name__ == "__main__":
    sys.exit(main())
