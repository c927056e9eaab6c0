"""Logging: one line per connection open/close and per task state change, with ids.
Never tokens or payload bodies (odoorpc's DEBUG log would leak the Odoo password, so its
logger is pinned to INFO).

``LOG_FORMAT=text`` (default) writes ``time level logger message``; ``LOG_FORMAT=json``
writes one JSON object per line with ``task_id`` and ``conn_id`` as fields (taken from the
record's ``extra`` or, for lines that name them in the message, from the message).

:func:`configure_logging` replaces whatever handlers were set before (``force=True``):
under the dramatiq CLI and uvicorn, logging is configured before our code runs, and
``LOG_LEVEL`` / ``LOG_FORMAT`` must win there too.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from typing import Any

__all__ = ["JsonFormatter", "RedactSecrets", "configure_logging"]

# A credential someone put in a URL's query string (the gateway never asks for one there,
# but uvicorn logs WebSocket handshakes with their full path).
_SECRET_IN_QUERY = re.compile(r"([?&](?:token|access_token|api_key|password)=)[^&\s\"']*", re.IGNORECASE)
# How the project's log lines name a task and a connection ("task <id> …", "task=<id>", "conn=<id>").
_TASK_IN_MESSAGE = re.compile(r"\btask[ =]([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\b")
_CONN_IN_MESSAGE = re.compile(r"\bconn=([0-9a-f]{12})\b")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class RedactSecrets(logging.Filter):
    """Replaces credentials in query strings of a record's message with ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_IN_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, and the ids."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
            "pid": record.process,
        }
        for field, pattern in (("task_id", _TASK_IN_MESSAGE), ("conn_id", _CONN_IN_MESSAGE)):
            value = getattr(record, field, None)
            if value is None and (found := pattern.search(message)) is not None:
                value = found.group(1)
            if value is not None:
                line[field] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, separators=(",", ":"), default=str)


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    # Neither format shows a caller's file, line, function or thread, and the gateway logs a
    # line per accepted task: skip collecting them (the logging HOWTO's "Optimization"),
    # one stack walk per record (~1 % of the gateway's CPU per accept). The JSON format's
    # pid stays.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(RedactSecrets())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.getLogger("odoorpc").setLevel(max(logging.INFO, logging.getLogger().level))
    for noisy in ("pika", "aiormq", "aio_pika"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "dramatiq"):
        logger = logging.getLogger(name)
        # Through the root handler, in the one format: uvicorn and dramatiq may have put
        # handlers of their own on these loggers before we ran. An access log uvicorn
        # turned off (no handlers, not propagating: ``access_log=False``) stays off.
        if logger.handlers or logger.propagate:
            logger.handlers.clear()
            logger.propagate = True
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
