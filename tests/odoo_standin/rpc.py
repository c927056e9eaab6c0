"""The ``/jsonrpc`` services (``common``, ``db``, ``object``) and the one-transaction-per-call rule.

Mirrors ``odoo/service/{common,db,model}.py``: credentials are checked on every ``object`` call,
the context only comes from ``kwargs['context']``, and a call that raises leaves no trace. An
``object`` call whose transaction was overtaken by a concurrent commit fails with
``SerializationFailure`` and is retried like ``retrying()`` does (see ``concurrency.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from . import business, json2, methods  # noqa: F401  (registers the model methods)
from .concurrency import ConcurrencySettings, backoff, serialization_failure
from .models import Database, Env, OdooError, call, user_error
from .schema import SUPERUSER_ID
from .store import WriteConflict

log = logging.getLogger("tests.odoo_standin")

LOGIN_COOLDOWN_AFTER = 5  # base.login_cooldown_after code fallback
LOGIN_COOLDOWN_SECONDS = 60.0  # base.login_cooldown_duration
SUPPORTED_MAJORS = range(16, 20)


def access_denied(message: str = "Access Denied") -> OdooError:
    return OdooError("odoo.exceptions.AccessDenied", message)


def version_payload(version: str) -> dict[str, Any]:
    """``odoo.service.common.exp_version()`` for ``version`` ("17.0")."""
    major, minor = (int(part) for part in version.split(".")[:2])
    return {
        "server_version": version,
        "server_version_info": [major, minor, 0, "final", 0, ""],
        "server_serie": version,
        "protocol_version": 1,
    }


class Dispatcher:
    """Executes calls against one database under one global lock (Odoo: one transaction)."""

    def __init__(
        self,
        version: str,
        db: str,
        login: str,
        password: str,
        api_keys: tuple[str, ...],
        settings: ConcurrencySettings | None = None,
    ) -> None:
        major = int(version.split(".")[0])
        if major not in SUPPORTED_MAJORS:
            raise ValueError(f"unsupported Odoo version {version!r} (16.0-19.0)")
        self.version, self.major = version, major
        self.db_name, self.login, self.password = db, login, password
        self.initial_api_keys = tuple(api_keys)
        self.lock = threading.RLock()
        self.database = Database(major, login)
        self.initial_settings = settings or ConcurrencySettings()
        self.held_open = 0  # transactions waiting with their snapshot taken, right now (not reset)
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.database.reset()
            self.settings = self.initial_settings
            self.login_attempts = 0
            self.failed_logins = 0
            self.serialization_failures = 0  # tries that failed, retried or not
            self.rejected_keys = 0  # JSON-2 requests refused for a missing or unknown API key
            self.json2_calls = 0  # JSON-2 requests that reached a model method
            # res.users.apikeys of each database: key -> uid (the login user's, uid 2)
            self.api_keys: dict[str, dict[str, int]] = {self.db_name: dict.fromkeys(self.initial_api_keys, 2)}
            self._failures: dict[str, tuple[int, float]] = {}  # remote ip -> (count, last)

    # ------------------------------------------------------------------ transactions

    def transaction(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` atomically: on any exception every table change is rolled back."""
        with self.lock, self.database.transaction():
            return fn()

    def dispatch(self, service: str, method: str, args: list[Any], remote: str, hold: float = 0.0) -> Any:
        """Run one RPC call. ``hold``: seconds an ``object`` call keeps its transaction open
        (snapshot taken, then a wait outside the lock) before running, on its first try (the
        ``delay``/``inside`` fault); other services have no transaction and just wait first."""
        if not isinstance(args, list):
            raise OdooError("builtins.TypeError", "args must be a list")
        if service == "object":
            return self._retrying(lambda: self._object(method, args), hold)
        if hold > 0:
            time.sleep(hold)
        if service == "common":
            return self._common(method, args, remote)
        if service == "db":
            return self._db(method, args)
        raise OdooError("builtins.KeyError", repr(service))

    def json2_call(self, request: json2.Json2Request, hold: float = 0.0) -> Any:
        """One ``/json/2`` request: the bearer key, then the method in one transaction, retried
        on serialization failures like an ``object`` call (Odoo wraps both in ``retrying``)."""
        with self.lock:
            uid = self.api_keys.get(request.db, {}).get(request.token)
            if uid is None:
                self.rejected_keys += 1
                raise json2.http_error("Unauthorized", "Invalid apikey")
            self.json2_calls += 1
        return self._retrying(lambda: json2.call(Env(self.database, uid, dict(request.context)), request), hold)

    def set_api_key(self, key: str, active: bool = True) -> None:
        """Create (``active``) or revoke a key of the login user (``res.users.apikeys``)."""
        with self.lock:
            keys = self.api_keys.setdefault(self.db_name, {})
            if active:
                keys[key] = 2
            else:
                keys.pop(key, None)

    def _retrying(self, fn: Callable[[], Any], hold: float) -> Any:
        """``odoo.service.model.retrying``: a serialization failure rolls the call back and runs it
        again in a new transaction after a random wait, up to the configured retries."""
        tryno = 1
        while True:
            settings = self.settings
            try:
                return self._try(fn, hold + settings.transaction_hold_seconds)
            except WriteConflict as conflict:
                with self.lock:
                    self.serialization_failures += 1
                tries_left = settings.concurrency_retries + 1 - tryno
                if tries_left <= 0:
                    log.info("SERIALIZATION_FAILURE on %s, maximum number of tries reached!", conflict)
                    raise serialization_failure() from None
                wait = backoff(tryno, settings.concurrency_backoff_scale)
                log.info(
                    "SERIALIZATION_FAILURE on %s, %s tries left, try again in %.04f sec...", conflict, tries_left, wait
                )
                time.sleep(wait)
                tryno, hold = tryno + 1, 0.0  # an injected delay holds the first try only

    def _try(self, fn: Callable[[], Any], hold: float) -> Any:
        """One transaction. Held open: the snapshot is the commit count before the wait; else it
        is taken under the lock, where nothing can overtake it."""
        snapshot = None
        if hold > 0:
            with self.lock:
                snapshot = self.database.commit_seq
                self.held_open += 1
            try:
                time.sleep(hold)  # outside the global lock: other calls run and commit meanwhile
            finally:
                with self.lock:
                    self.held_open -= 1
        with self.lock, self.database.transaction(snapshot=snapshot):
            return fn()

    # ------------------------------------------------------------------ services

    def _check_db(self, db: Any) -> None:
        if db != self.db_name:
            raise OdooError("psycopg2.OperationalError", f'database "{db}" does not exist')

    def _common(self, method: str, args: list[Any], remote: str) -> Any:
        if method == "version":
            return version_payload(self.version)
        if method in ("login", "authenticate"):
            expected = 3 if method == "login" else 4
            if len(args) != expected:
                raise OdooError(
                    "builtins.TypeError",
                    f"exp_{method}() takes {expected} positional arguments but {len(args)} were given",
                )
            return self._authenticate(args[0], args[1], args[2], remote)
        raise OdooError("builtins.KeyError", repr(f"exp_{method}"))

    def _db(self, method: str, args: list[Any]) -> Any:
        if method == "list":
            return [self.db_name]
        if method == "server_version":
            return self.version
        raise OdooError("builtins.KeyError", repr(f"exp_{method}"))

    def _password_ok(self, password: Any) -> bool:
        keys = self.api_keys.get(self.db_name, {})
        return isinstance(password, str) and bool(password) and (password == self.password or password in keys)

    def _authenticate(self, db: Any, login: Any, password: Any, remote: str) -> Any:
        with self.lock:
            self.login_attempts += 1
            self._check_db(db)
            failures, last = self._failures.get(remote, (0, 0.0))
            now = time.monotonic()
            if failures >= LOGIN_COOLDOWN_AFTER and now - last < LOGIN_COOLDOWN_SECONDS:
                # res.users._assert_can_auth: refused before the password is even looked at.
                self.failed_logins += 1
                raise access_denied("Too many login failures, please wait a bit before trying again.")
            user = next(
                (u for u in self.database.tables["res.users"].values() if u["login"] == login and u["active"]),
                None,
            )
            if user is not None and self._password_ok(password):
                self._failures.pop(remote, None)
                return user["id"]
            self._failures[remote] = (failures + 1, now)
            self.failed_logins += 1
            return False  # exp_authenticate turns AccessDenied into False

    def _object(self, method: str, args: list[Any]) -> Any:
        if len(args) < 5:
            raise OdooError("builtins.IndexError", "list index out of range")
        db, uid, password = args[0], args[1], args[2]
        self._check_db(db)
        self._check_credentials(uid, password)
        model, name = args[3], args[4]
        if method == "execute":
            call_args, kwargs = list(args[5:]), {}
        elif method == "execute_kw":
            call_args = list(args[5]) if len(args) > 5 and args[5] else []
            kwargs = dict(args[6]) if len(args) > 6 and args[6] else {}
        else:
            raise OdooError("builtins.NameError", f"Method not available {method}")
        context = kwargs.pop("context", None) or {}
        if not isinstance(context, dict):
            raise OdooError("builtins.ValueError", "context must be a dictionary")
        if model not in self.database.schema:
            raise user_error(f"Object {model} doesn't exist")
        if not isinstance(name, str) or name.startswith("_"):
            raise OdooError(
                "odoo.exceptions.AccessError",
                f"Private methods (such as '{model}.{name}') cannot be called remotely.",
            )
        env = Env(self.database, int(uid), dict(context))
        return call(env, model, name, call_args, kwargs)

    def _check_credentials(self, uid: Any, password: Any) -> None:
        try:
            uid = int(uid)
        except (TypeError, ValueError):
            raise access_denied() from None
        user = self.database.tables["res.users"].get(uid)
        if uid == SUPERUSER_ID or user is None or not user["active"] or not self._password_ok(password):
            raise access_denied()

    # ------------------------------------------------------------------ test hooks

    def mark_outdated(self, product_code: str, location_name: str, outdated: bool) -> int:
        env = Env(self.database, SUPERUSER_ID, {})
        return int(self.transaction(lambda: business.mark_outdated(env, product_code, location_name, outdated)))
