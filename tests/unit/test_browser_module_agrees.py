"""The browser module keeps copies of the wire protocol's rules (``odoo_gateway_wire``):
the tables are read out of gateway-client.js and compared, and its two decision functions
(reconnect after a close code, resend after an error) are run in Node over every code and
compared with the Python ones, so the copies can't drift."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from odoo_gateway_wire import compact
from odoo_gateway_wire.close_codes import RECONNECT_RULES, CloseCode, should_reconnect
from odoo_gateway_wire.error_codes import RETRYABLE_ERROR_CODES, ErrorCode, is_retryable
from odoo_gateway_wire.limits import MAX_RESUME_TASKS
from odoo_gateway_wire.statuses import FINAL_STATUSES, TaskStatus

MODULE_PATH = Path(__file__).parents[2] / "gateway" / "static" / "gateway-client.js"
MODULE = MODULE_PATH.read_text()


def _frozen(name: str) -> Any:
    """The JSON inside ``export const NAME = Object.freeze(...)``."""
    match = re.search(rf"export const {name} = Object\.freeze\((.*?)\);\n", MODULE, re.S)
    assert match, f"{name} not found in gateway-client.js"
    text = re.sub(r",(\s*[\]}])", r"\1", match.group(1).replace("'", '"'))  # no trailing commas in JSON
    return json.loads(text)


def test_final_statuses_are_the_wires() -> None:
    assert set(_frozen("FINAL_STATUSES")) == {status.value for status in FINAL_STATUSES}
    assert {status.value for status in TaskStatus if status.final} == {status.value for status in FINAL_STATUSES}


def test_reconnect_rule_table_is_the_wires() -> None:
    assert [tuple(rule) for rule in _frozen("RECONNECT_RULES")] == list(RECONNECT_RULES)


def test_retryable_error_codes_agree() -> None:
    assert set(_frozen("RETRYABLE_ERROR_CODES")) == {code.value for code in RETRYABLE_ERROR_CODES}


def test_compact_form_tables_agree() -> None:
    assert _frozen("COMPACT_WIRE") == {
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


_CLOSE_CODES = [*range(0, 5200, 1), 65535]
_ERRORS: list[tuple[str, Any]] = [
    *((code.value, None) for code in ErrorCode),
    ("odoo_unavailable", None),  # a code of the "unavailable" family this version does not know
    ("something_new", None),
    ("something_new", 3),
    ("validation_failed", 1),
]


def test_decisions_agree_when_run() -> None:
    node = shutil.which("node")
    assert node, "Node.js is needed to run the browser module (.ci/run installs Debian's nodejs)"
    script = (
        f"import {{ shouldReconnect, isRetryable }} from {json.dumps(MODULE_PATH.as_uri())};\n"
        f"const codes = {json.dumps(_CLOSE_CODES)};\n"
        f"const errors = {json.dumps(_ERRORS)};\n"
        "console.log(JSON.stringify({reconnect: codes.map(shouldReconnect),"
        " retryable: errors.map(([code, after]) => isRetryable(code, after))}));\n"
    )
    done = subprocess.run(
        [node, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60, check=True
    )
    answers = json.loads(done.stdout)
    assert answers["reconnect"] == [should_reconnect(code) for code in _CLOSE_CODES]
    assert answers["retryable"] == [is_retryable(code, after) for code, after in _ERRORS]
    # And the rule says what the gateway means by its own codes.
    assert {code for code in CloseCode if not code.reconnect} == {
        CloseCode.MESSAGE_TOO_BIG,
        CloseCode.AUTH_FAILED,
        CloseCode.AUTH_TIMEOUT,
    }
