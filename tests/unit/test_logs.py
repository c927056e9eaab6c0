"""LOG_FORMAT=json: one parseable object per line, ids as fields, secrets redacted, and
LOG_LEVEL wins over handlers someone configured before us (the dramatiq CLI does)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from shared.logs import JsonFormatter, configure_logging

TASK = "0f8b2c4e-1234-4abc-9def-0123456789ab"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def formatted(message: str, *args: object, **extra: object) -> dict[str, object]:
    record = logging.LogRecord("gateway.ws", logging.INFO, __file__, 1, message, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, object] = json.loads(line)
    return parsed


def test_json_lines_parse_and_carry_task_and_connection_ids() -> None:
    opened = formatted("ws close conn=%s code=%d reason=%s", "a1b2c3d4e5f6", 1001, "gateway shutting down")
    assert opened["conn_id"] == "a1b2c3d4e5f6" and opened["level"] == "INFO" and opened["logger"] == "gateway.ws"
    assert "code=1001" in str(opened["message"]) and "task_id" not in opened
    task = formatted("task %s running seq=%d attempt=%d", TASK, 2, 1)
    assert task["task_id"] == TASK
    assert formatted("anomaly unknown_task task=%s: x", TASK)["task_id"] == TASK
    assert formatted("something", task_id="explicit")["task_id"] == "explicit"


def test_configure_logging_replaces_earlier_handlers_and_redacts(capsys: pytest.CaptureFixture[str]) -> None:
    earlier = io.StringIO()
    logging.basicConfig(level=logging.DEBUG, stream=earlier, force=True)  # as the dramatiq CLI does
    configure_logging("WARNING", "json")
    logging.getLogger("x").info("not shown")
    logging.getLogger("uvicorn.error").warning("GET /v1/ws?token=s3cret HTTP/1.1")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert earlier.getvalue() == ""
    assert [line["level"] for line in lines] == ["WARNING"]
    assert "s3cret" not in lines[0]["message"] and "[redacted]" in lines[0]["message"]
