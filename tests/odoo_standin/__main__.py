"""``python -m tests.odoo_standin --host 127.0.0.1 --port 8069 --version 17.0``: serve in the
foreground, one log line per call, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from .concurrency import ConcurrencySettings
from .server import OdooStandin


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.odoo_standin", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8069)
    parser.add_argument("--version", default="17.0", help="Odoo version to report, 16.0-19.0")
    parser.add_argument("--db", default="odoo")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument(
        "--api-key",
        action="append",
        default=[],
        dest="api_keys",
        help="an API key of the login user: the password on /jsonrpc, the bearer key on /json/2 (19.0) (repeatable)",
    )
    defaults = ConcurrencySettings()
    parser.add_argument(
        "--concurrency-retries",
        type=int,
        default=defaults.concurrency_retries,
        help="retries after a serialization failure (default %(default)s: Odoo's 5 tries; 0: answer the error)",
    )
    parser.add_argument(
        "--concurrency-backoff-scale",
        type=float,
        default=defaults.concurrency_backoff_scale,
        help="factor on Odoo's uniform(0, 2**try) seconds between tries (default %(default)s)",
    )
    parser.add_argument(
        "--transaction-hold-seconds",
        type=float,
        default=defaults.transaction_hold_seconds,
        help="every object call holds its transaction open this long before running (default %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        ConcurrencySettings(args.concurrency_retries, args.concurrency_backoff_scale, args.transaction_hold_seconds)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    standin = OdooStandin(
        host=args.host,
        port=args.port,
        version=args.version,
        db=args.db,
        login=args.login,
        password=args.password,
        api_keys=tuple(args.api_keys),
        concurrency_retries=args.concurrency_retries,
        concurrency_backoff_scale=args.concurrency_backoff_scale,
        transaction_hold_seconds=args.transaction_hold_seconds,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        # shutdown() blocks until serve_forever returns, so it cannot run in the serving
        # (main) thread that receives the signal.
        threading.Thread(target=standin.stop, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    standin.bind()
    logging.info("Odoo %s stand-in on %s (db %r)", args.version, standin.url, args.db)
    standin.serve_forever()
    logging.info("stand-in stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
