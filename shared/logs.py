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

import asyncio
import json
import logging
import re
import sys
from typing import Any, TextIO

__all__ = ["JsonFormatter", "RedactSecrets", "TurnFlushedHandler", "configure_logging"]

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


class TurnFlushedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Lines logged on a thread running an asyncio loop go out together, in one write at
    the start of the loop's next turn, instead of one ``write`` call each (the gateway logs
    a line per accepted task: one system call per line was ~6 % of its CPU per accept).
    Lines from any other thread (executor threads, Dramatiq's workers) are written at once,
    after whatever is pending, so the order of lines is kept. The cost: a process killed
    outright loses the lines of the turn it died in; an orderly exit writes them
    (``logging.shutdown`` flushes every handler)."""

    def __init__(self, stream: TextIO) -> None:
        super().__init__(stream)
        self._pending: list[str] = []
        self._scheduled_on: asyncio.AbstractEventLoop | None = None

    def emit(self, record: logging.LogRecord) -> None:  # called holding self.lock
        try:
            line = self.format(record) + self.terminator
            try:
                loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
            scheduled = self._scheduled_on
            if loop is not None and (scheduled is None or scheduled is loop) and not loop.is_closed():
                self._pending.append(line)
                if scheduled is None:
                    self._scheduled_on = loop
                    loop.call_soon(self.flush)
                return
            self._pending.append(line)
            self._write_pending()
        except Exception:
            self.handleError(record)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._write_pending()

    def _write_pending(self) -> None:
        self._scheduled_on = None
        if self._pending:
            text = "".join(self._pending)
            self._pending = []
            self.stream.write(text)
        super().flush()


def configure_logging(level: str = "INFO", fmt: str = "text") -> None:
    # Neither format shows a caller's file, line, function or thread, and the gateway logs a
    # line per accepted task: skip collecting them (the logging HOWTO's "Optimization"),
    # one stack walk per record (~1 % of the gateway's CPU per accept). The JSON format's
    # pid stays.
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = TurnFlushedHandler(sys.stderr)
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
