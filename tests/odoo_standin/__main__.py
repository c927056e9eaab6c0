"""``python -m tests.odoo_standin --host 127.0.0.1 --port 8069 --version 17.0``: serve in the
foreground, one log line per call, clean stop on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

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
        help="accepted in place of the password (repeatable)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    standin = OdooStandin(
        host=args.host,
        port=args.port,
        version=args.version,
        db=args.db,
        login=args.login,
        password=args.password,
        api_keys=tuple(args.api_keys),
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
