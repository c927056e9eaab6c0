"""The browser module keeps copies of five rules whose owners are Python modules; this
reads them out of gateway-client.js and checks they agree, so the copies can't drift."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from client.errors import RETRYABLE_CODES
from shared import compact
from shared.errors import CloseCode
from shared.events import TaskStatus
from shared.protocol import MAX_RESUME_TASKS

MODULE = (Path(__file__).parents[2] / "gateway" / "static" / "gateway-client.js").read_text()


def _frozen_array(name: str) -> list[str]:
    match = re.search(rf"export const {name} = Object\.freeze\(\[(.*?)\]\);", MODULE, re.S)
    assert match, f"{name} not found in gateway-client.js"
    return [item.strip().strip("'") for item in match.group(1).split(",") if item.strip()]


def test_terminal_close_codes_agree() -> None:
    assert {int(code) for code in _frozen_array("TERMINAL_CLOSE_CODES")} == {c for c in CloseCode if not c.reconnect}


def test_retryable_error_codes_agree() -> None:
    assert set(_frozen_array("RETRYABLE_ERROR_CODES")) == RETRYABLE_CODES


def test_final_statuses_agree() -> None:
    final = {status.value for status in TaskStatus if status.final}
    assert final <= set(_frozen_array("FINAL_STATUSES"))


def _compact_wire() -> dict[str, Any]:
    match = re.search(r"export const COMPACT_WIRE = Object\.freeze\((\{.*?\})\);", MODULE, re.S)
    assert match, "COMPACT_WIRE not found in gateway-client.js"
    table: dict[str, Any] = json.loads(match.group(1))
    return table


def test_compact_form_tables_agree() -> None:
    wire = _compact_wire()
    assert wire == {
        "subprotocol": compact.COMPACT_SUBPROTOCOL,
        "statusCodes": compact.STATUS_CODES,
        "clientTypes": compact.CLIENT_TYPES,
        "clientKeys": compact.CLIENT_KEYS,
        "serverTypes": compact.SERVER_TYPES,
        "serverKeys": compact.SERVER_KEYS,
    }


def test_resume_chunk_is_the_gateways_limit() -> None:
    match = re.search(r"export const RESUME_CHUNK = (\d+);", MODULE)
    assert match and int(match.group(1)) == MAX_RESUME_TASKS
