"""Logging: one line per connection open/close and per task state change, with ids.
Never tokens or payload bodies (odoorpc's DEBUG log would leak the Odoo password, so its
logger is pinned to INFO)."""

from __future__ import annotations

import logging
import re

__all__ = ["RedactSecrets", "configure_logging"]

# A credential someone put in a URL's query string (the gateway never asks for one there,
# but uvicorn logs WebSocket handshakes with their full path).
_SECRET_IN_QUERY = re.compile(r"([?&](?:token|access_token|api_key|password)=)[^&\s\"']*", re.IGNORECASE)


class RedactSecrets(logging.Filter):
    """Replaces credentials in query strings of a record's message with ``[redacted]``."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = _SECRET_IN_QUERY.sub(r"\1[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("odoorpc").setLevel(max(logging.INFO, logging.getLogger().level))
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
    for name in ("uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactSecrets) for f in logger.filters):
            logger.addFilter(RedactSecrets())
