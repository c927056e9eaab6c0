"""The gateway's wire protocol, v1 and its compact form: no I/O, no dependencies.

One owner for every rule both sides must agree on; the gateway and the Python client
import it, and a test checks the browser module (``gateway/static/gateway-client.js``)
against it. Where to look:

- ``statuses``: task statuses, which are final, how events are numbered (``seq``);
- ``frames``: every WebSocket frame, built, and encoded in v1 or compact form;
- ``compact``: the compact form (subprotocol ``gateway.v1c``), translated both ways;
- ``close_codes``: the close codes the gateway sends and the reconnect rule for any code;
- ``error_codes``: error answers, and which mean "send the same submission again later";
- ``limits``: bounds both sides must respect (resume size, key pattern, ...);
- ``fingerprint``: what makes two submissions under one idempotency key the same.
"""

from odoo_gateway_wire.close_codes import RECONNECT_RULES, CloseCode, should_reconnect
from odoo_gateway_wire.compact import COMPACT_SUBPROTOCOL
from odoo_gateway_wire.error_codes import RETRYABLE_ERROR_CODES, ErrorCode, is_retryable
from odoo_gateway_wire.fingerprint import canonical_submission, fingerprint
from odoo_gateway_wire.limits import IDEMPOTENCY_KEY_PATTERN, MAX_RESUME_TASKS
from odoo_gateway_wire.statuses import FINAL_STATUSES, TaskStatus, attempt_of_seq, event_seq

__all__ = [
    "COMPACT_SUBPROTOCOL",
    "FINAL_STATUSES",
    "IDEMPOTENCY_KEY_PATTERN",
    "MAX_RESUME_TASKS",
    "RECONNECT_RULES",
    "RETRYABLE_ERROR_CODES",
    "CloseCode",
    "ErrorCode",
    "TaskStatus",
    "attempt_of_seq",
    "canonical_submission",
    "event_seq",
    "fingerprint",
    "is_retryable",
    "should_reconnect",
]
