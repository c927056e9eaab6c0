"""Odoo's concurrency on the rows a call writes (``stock.quant`` above all), as the stand-in models it.

What a real Odoo does (read in odoo/odoo ``odoo/service/model.py``: the 16.0/17.0-era file with
``registry.manage_changes()``, the 18.0-era one with ``call_kw`` and the ``errors.*`` classes, the
19.0-era one with ``get_public_method`` and ``ConcurrencyError``; ``odoo/http.py``
``serialize_exception``; psycopg2 ``psycopg/pqpath.c``):

- Every ``object.execute``/``execute_kw`` call is one database transaction: ``execute()`` opens
  ``with Registry(db).cursor() as cr`` and ``execute_cr()`` runs
  ``retrying(partial(call_kw, recs, method, args, kw), env)`` in it (19.0 checks the password in
  that cursor first). Odoo's cursors run at REPEATABLE READ (``odoo/sql_db.py``): the snapshot
  is taken by the transaction's first query.
- Two overlapping transactions that UPDATE (or DELETE, or ``SELECT ... FOR [NO KEY] UPDATE``) the
  same row: PostgreSQL lets the first one do it; the other waits for it and, once it commits,
  fails with SQLSTATE 40001 ``could not serialize access due to concurrent update`` ("first
  updater wins" against the snapshot taken when the transaction began; a row changed by a
  transaction that committed before that snapshot is no conflict).
- ``retrying(func, env)`` catches ``IntegrityError`` and ``OperationalError`` (the 19.0-era file
  also ``odoo.exceptions.ConcurrencyError``), rolls the whole transaction back
  (``env.cr.rollback()``, transaction and registry caches reset) and, for
  ``PG_CONCURRENCY_ERRORS_TO_RETRY = (LOCK_NOT_AVAILABLE, SERIALIZATION_FAILURE,
  DEADLOCK_DETECTED)`` (18.0+: ``PG_CONCURRENCY_EXCEPTIONS_TO_RETRY`` = ``errors.LockNotAvailable,
  errors.SerializationFailure, errors.DeadlockDetected``), sleeps ``random.uniform(0.0, 2 **
  tryno)`` and calls ``func`` again in a fresh transaction, for ``tryno`` in ``range(1,
  MAX_TRIES_ON_CONCURRENCY_FAILURE + 1)`` with ``MAX_TRIES_ON_CONCURRENCY_FAILURE = 5``: **5
  tries in all, i.e. 4 retries**, after waits of up to 2, 4, 8 and 16 s. Out of tries
  (``"%s, maximum number of tries reached!"``) it re-raises the psycopg2 error, rolled back. A
  success commits once. (An ``IntegrityError`` becomes a ``ValidationError`` at once, no retry.)
- The RPC client then gets the usual JSON-RPC error (``serialize_exception``): ``data.name`` is
  ``f"{module}.{name}"`` of the exception class, i.e. ``"psycopg2.errors.SerializationFailure"``
  (psycopg2 >= 2.8 raises that ``OperationalError`` subclass for SQLSTATE 40001);
  ``data.message`` is ``str(exc)`` (17.0 ``ustr``, 18.0+ ``exception_to_unicode``), which
  psycopg2 builds from libpq's message with the ``ERROR:`` severity stripped and the trailing
  newline kept (``pq_raise``, ``strip_severity``):
  ``"could not serialize access due to concurrent update\\n"``; ``data.arguments`` is
  ``exc.args`` (that one string); ``code`` 200 (19.0: 0), ``message`` ``"Odoo Server Error"``.
  odoorpc raises ``odoorpc.error.RPCError(data.message, error)``.

The stand-in: calls still execute one at a time under the dispatcher's global lock, with the undo
log of ``store.py``. What makes two calls overlap is a transaction held open:

- every ``object`` call reads the store's commit counter (``Store.commit_seq``) when its
  transaction begins: its snapshot. Normally that happens under the lock just before it runs, so
  nothing can have committed in between and nothing is checked (the existing behaviour, at the
  cost of one comparison);
- a call can hold its transaction open: the fault ``FaultRule(kind="delay", phase="inside",
  seconds=S)`` (that call, first try only) or the setting ``transaction_hold_seconds`` (every call
  and every try) takes the snapshot, then sleeps outside the lock, then runs against it;
- every stored row (of every model) remembers the commit that last changed it; a call that changes
  or deletes a row committed after its snapshot fails with ``SerializationFailure`` before the
  write happens, and the undo log rolls the call back;
- the call is then retried like ``retrying()`` does, in a fresh transaction (new snapshot, no
  injected delay), ``concurrency_retries`` times (default 4, Odoo's 5 tries; 0 sends the first
  failure to the client) after sleeping ``random.uniform(0, concurrency_backoff_scale * 2 **
  tryno)`` (default scale 1.0 is Odoo's; tests use a small one). Only when the retries are used up
  does the client get the error, shaped as above.

Simplifications: reads see the latest committed data, not the snapshot (only writes are checked);
a row inserted after the snapshot counts as changed after it (PostgreSQL would not even show it);
the first writer is the one that runs first under the lock (PostgreSQL: the one that updates the
row first), and a conflict is detected when the later one writes, not after the first commits;
``LockNotAvailable``/``DeadlockDetected`` are not modelled (no lock waits).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from .models import OdooError

SERIALIZATION_FAILURE = "psycopg2.errors.SerializationFailure"
SERIALIZATION_MESSAGE = "could not serialize access due to concurrent update\n"  # str(psycopg2 error)
MAX_TRIES_ON_CONCURRENCY_FAILURE = 5  # odoo/service/model.py


def serialization_failure() -> OdooError:
    return OdooError(SERIALIZATION_FAILURE, SERIALIZATION_MESSAGE)


def backoff(tryno: int, scale: float) -> float:
    """``retrying()``'s wait after failed try ``tryno`` (1-based): ``uniform(0, 2 ** tryno)``."""
    return random.uniform(0.0, scale * 2**tryno)


@dataclass(frozen=True)
class ConcurrencySettings:
    """Stand-in settings for the transaction model (see the module docstring).

    concurrency_retries:       retries after a serialization failure (Odoo: 4, five tries in all;
                               0: the first failure reaches the client)
    concurrency_backoff_scale: factor on Odoo's ``uniform(0, 2 ** tryno)`` seconds between tries
                               (1.0 is Odoo's; 0 retries at once)
    transaction_hold_seconds:  every object call takes its snapshot, then waits this long outside
                               the global lock before running (0: off)
    """

    concurrency_retries: int = MAX_TRIES_ON_CONCURRENCY_FAILURE - 1
    concurrency_backoff_scale: float = 1.0
    transaction_hold_seconds: float = 0.0

    def __post_init__(self) -> None:
        # A wrong setting must fail where it is made, not turn a test green for the wrong reason.
        retries = self.concurrency_retries
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"concurrency_retries must be an integer >= 0, got {retries!r}")
        for name in ("concurrency_backoff_scale", "transaction_hold_seconds"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be a number of seconds >= 0, got {value!r}")

    def updated(self, changes: dict[str, Any]) -> ConcurrencySettings:
        """A copy with ``changes`` applied; unknown names are an error."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown stand-in settings: {sorted(unknown)}; expected some of {sorted(known)}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
