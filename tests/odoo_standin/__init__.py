"""An Odoo stand-in: a stdlib HTTP server speaking Odoo's real JSON-RPC so ``odoorpc`` works,
and, as Odoo 19, its JSON-2 API.

Odoo routes served (as Odoo 16-19 answer them, see /work/shared/reference/odoo.md):

- ``POST /web/webclient/version_info`` -> ``exp_version()`` payload
- ``POST /jsonrpc`` with ``{service, method, args}``: ``common.login|authenticate|version``,
  ``db.list|server_version``, ``object.execute|execute_kw`` on the in-memory models
  (``res.partner``, ``res.users``, ``res.company``, ``product.product``, ``stock.location``,
  ``stock.quant``, ``stock.move``, ``sale.order``, ``sale.order.line``, ``ir.model``)
- version 19.0 only: ``POST /json/2/<model>/<method>`` (bearer API keys, ``X-Odoo-Database``,
  named arguments, Odoo's JSON-2 error object and statuses, one transaction per request; see
  ``json2.py``) and ``GET /web/version`` (alias ``/json/version``). Faults apply to it by
  model/method exactly as to ``/jsonrpc`` calls.

Test-control routes. These are NOT Odoo's; they exist so another process can drive the stand-in:

- ``POST /_standin/faults`` (JSON ``FaultRule`` fields) -> 201 + the rule
- ``GET /_standin/faults`` (pending rules), ``DELETE /_standin/faults`` (clear them)
- ``GET /_standin/effects?model=&method=`` -> JSON list of committed mutating calls
- ``GET /_standin/records/<model>`` -> JSON list of current rows
- ``POST /_standin/reset`` -> demo data again, no faults, no effects, login counters zeroed
- ``POST /_standin/outdated`` ``{"product_code", "location", "outdated": true}`` -> quant id
- ``POST /_standin/api_keys`` ``{"key", "active": true|false}``: create or revoke an API key of
  the login user (both APIs)
- ``GET /_standin/stats`` -> ``{"login_attempts", "failed_logins", "rejected_keys", "json2_calls",
  "serialization_failures", "held_open"}``
- ``GET /_standin/settings`` -> the ``ConcurrencySettings``; ``POST /_standin/settings`` with some
  of them (``{"concurrency_retries": 0}``) changes them (unknown names, bad values: 400); reset
  restores the values the stand-in was started with

Concurrency (``concurrency.py``, which cites the Odoo source it follows): each ``object`` call is
one transaction with a snapshot, retried on ``psycopg2.errors.SerializationFailure`` like Odoo's
``retrying()`` (5 tries: ``concurrency_retries=4``; random back-off ``uniform(0, 2**try)`` times
``concurrency_backoff_scale``). Calls run one at a time under a global lock, so transactions only
overlap when one is held open: ``FaultRule(kind="delay", phase="inside", seconds=S)`` (that call)
or ``transaction_hold_seconds`` (every call) takes the snapshot, waits outside the lock, then runs;
writing a row (any model, ``stock.quant`` above all) that another call committed meanwhile fails
and is rolled back, then retried, and only the last failure reaches the client.

Known simplifications (vs. a real Odoo): one database, one company, one loginable user (uid 2);
no access rights beyond the credential check; ``is_outdated`` is a sticky flag set by
``mark_outdated`` (real Odoo derives it from moves made after the count); many2one columns sort by
id; sequences roll back with a failed call; ``records()`` rows include computed fields; a held
transaction reads the latest committed rows (only its writes are checked against its snapshot).

Calls cost the same however much data has accumulated: a failed call is undone from an undo log
(``store.py``), and searches narrow their rows with field indexes before evaluating the domain.
``python -m tests.odoo_standin.bench --orders 20000`` measures it (calls/s, p50/p99 latency).

In process::

    s = OdooStandin(port=0, version="17.0").start()
    s.add_fault(FaultRule(kind="commit_then_drop", model="sale.order", method="create"))
    ...
    s.stop()
"""

from .concurrency import ConcurrencySettings
from .faults import FAULT_KINDS, FAULT_PHASES, FaultRule
from .models import Effect
from .server import OdooStandin

__all__ = ["FAULT_KINDS", "FAULT_PHASES", "ConcurrencySettings", "Effect", "FaultRule", "OdooStandin"]
