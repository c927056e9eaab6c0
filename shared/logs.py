"""Logging: one line per connection open/close and per task state change, with ids.
Never tokens or payload bodies (odoorpc's DEBUG log would leak the Odoo password, so its
logger is pinned to INFO)."""

from __future__ import annotations

import logging

__all__ = ["configure_logging"]


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    logging.getLogger("odoorpc").setLevel(max(logging.INFO, logging.getLogger().level))
    logging.getLogger("pika").setLevel(logging.WARNING)
    logging.getLogger("aiormq").setLevel(logging.WARNING)
    logging.getLogger("aio_pika").setLevel(logging.WARNING)
