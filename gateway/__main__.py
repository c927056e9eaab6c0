"""``python -m gateway``: serve the gateway with uvicorn, configured from the environment."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from shared.config import Settings
from shared.logs import configure_logging

__all__ = ["main"]


log = logging.getLogger("gateway")


def _prepare_metrics_dir(settings: Settings) -> None:
    """prometheus-client's multiprocess mode keeps a file per process: values of a previous
    run must not be summed with this one's, so the directory starts empty."""
    if settings.metrics_multiproc_dir:
        path = Path(settings.metrics_multiproc_dir)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):  # only prometheus-client's files, whatever else is there
            stale.unlink(missing_ok=True)
    elif settings.workers > 1:
        log.warning(
            "GATEWAY_WORKERS=%d without PROMETHEUS_MULTIPROC_DIR: each /metrics scrape shows one process",
            settings.workers,
        )


def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    _prepare_metrics_dir(settings)
    uvicorn.run(
        "gateway.app:app_from_env",
        factory=True,
        host=settings.host,
        port=settings.port,
        # httptools plus a bounded request head (size and time), see gateway/transport.py.
        http="gateway.transport:GuardedHttpProtocol",
        # websockets-sansio answers protocol violations with the RFC close codes; ours can
        # also drop a connection whose peer stopped reading.
        ws="gateway.transport:AbortableWebSocketProtocol",
        # Processes sharing the port, each a full gateway instance (its own store pool,
        # publisher and relay): Python runs one core per process.
        workers=settings.workers,
        ws_max_size=settings.ws_max_frame_bytes,
        # Frames read ahead of the app per socket (uvicorn then stops reading it): with the
        # frame size this bounds what a flooding peer makes us buffer to 8 x 64 KiB.
        ws_max_queue=8,
        ws_per_message_deflate=False,
        ws_ping_interval=20.0,
        ws_ping_timeout=20.0,
        timeout_keep_alive=settings.keepalive_timeout,
        timeout_graceful_shutdown=10,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
