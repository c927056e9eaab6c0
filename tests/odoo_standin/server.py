"""HTTP transport: Odoo's JSON-RPC envelope, fault injection and the ``/_standin`` control API."""

from __future__ import annotations

import copy
import json
import logging
import re
import socket
import struct
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import json2
from .concurrency import ConcurrencySettings
from .faults import FaultBook, FaultRule
from .models import Effect, Env, OdooError
from .orm import full_row
from .rpc import Dispatcher, version_payload
from .schema import SUPERUSER_ID

log = logging.getLogger("tests.odoo_standin")

HTML_ERROR = (
    "<!DOCTYPE html><html><head><title>{status} {reason}</title></head><body><center>"
    "<h1>{status} {reason}</h1></center><hr><center>nginx</center></body></html>"
)
RPC_PATHS = ("/jsonrpc", "/web/webclient/version_info")
VERSION_PATHS = ("/web/version", "/json/version")  # the rpc addon, saas~18.4+
JSON2_PREFIX = "/json/2"


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a delayed call must never keep the process (or stop()) waiting
    request_queue_size = 128  # many gateway workers may connect at once (listen backlog)

    def __init__(self, address: tuple[str, int], standin: OdooStandin) -> None:
        self.standin = standin
        super().__init__(address, _Handler)


def serialize_error(exc: BaseException, major: int, debug: str | None = None) -> dict[str, Any]:
    """``odoo.http.serialize_exception`` inside the JSON-RPC error envelope."""
    if isinstance(exc, OdooError):
        name, message = exc.name, exc.message
        debug = debug or (
            'Traceback (most recent call last):\n  File "/odoo/odoo/service/model.py", '
            f"line 156, in retrying\n    result = func()\n{name}: {message}\n"
        )
    else:  # a genuine bug in the stand-in surfaces like any Python error in Odoo
        name, message = f"{type(exc).__module__}.{type(exc).__name__}", str(exc)
    if name == "odoo.exceptions.AccessDenied":
        debug = ""  # AccessDenied.suppress_traceback()
    return {
        "code": 0 if major >= 19 else 200,  # 19 stopped pretending this is an HTTP status
        "message": "Odoo Server Error",
        "data": {
            "name": name,
            "debug": debug or "",
            "message": message,
            "arguments": [message],
            "context": {},
        },
    }


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # stdlib signature
        return  # one structured line per RPC call is logged by _rpc instead

    # ------------------------------------------------------------------ low-level replies

    _extra_headers: list[tuple[str, str]]

    def setup(self) -> None:
        super().setup()
        self._extra_headers = []

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            for name, value in self._extra_headers:
                self.send_header(name, value)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout): the call still ran, as on a real server

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        for name, value in (headers or {}).items():
            self._extra_headers.append((name, value))
        self._send(status, json.dumps(payload).encode(), "application/json")

    def _send_html(self, status: int) -> None:
        reason = self.responses.get(status, ("Error",))[0]
        body = HTML_ERROR.format(status=status, reason=reason).encode()
        self._send(status, body, "text/html; charset=utf-8")

    def _abort_rst(self) -> None:
        # SO_LINGER(on, 0) makes close() send RST instead of FIN: the client sees a reset, not
        # a clean (possibly empty) reply. The fd really closes when finish() drops rfile.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    # ------------------------------------------------------------------ verbs

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        if path.startswith("/_standin/"):
            self._control("POST", path, body)
        elif path in RPC_PATHS:
            self._rpc(path, body)
        elif self._json2_served(path):
            self._json2(path, body)
        elif "json" in (self.headers.get("Content-Type") or ""):
            self._not_found_json()
        else:
            self._send_html(404)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/_standin/"):
            self._control("GET", path, b"")
        elif path in VERSION_PATHS and self.server.standin.major >= 19:
            version = self.server.standin.version
            major, minor = (int(part) for part in version.split("."))
            self._send_json(200, {"version_info": [major, minor, 0, "final", 0, ""], "version": version})
        elif self._json2_served(path):  # only POST is routed: Odoo's catch-all answers the rest
            self._json2_error(json2.http_error("NotFound", "Did you mean POST /json/2/<model>/<method>?"))
        else:
            self._send_html(405 if path in RPC_PATHS else 404)

    def do_DELETE(self) -> None:
        path = urlsplit(self.path).path
        if path.startswith("/_standin/"):
            self._control("DELETE", path, b"")
        else:
            self._send_html(404)

    # ------------------------------------------------------------------ JSON-RPC

    def _not_found_json(self) -> None:
        standin = self.server.standin
        error = serialize_error(
            OdooError(
                "werkzeug.exceptions.NotFound",
                "404 Not Found: The requested URL was not found on the server.",
            ),
            standin.major,
            debug="",
        )
        error.update(code=404, message="404: Not Found")
        # 17+ answer JSON errors with HTTP 200 (make_json_response); 16 still used a 404.
        self._send_json(404 if standin.major < 17 else 200, {"jsonrpc": "2.0", "id": None, "error": error})

    def _rpc(self, path: str, body: bytes) -> None:
        standin = self.server.standin
        try:
            request = json.loads(body)
            if not isinstance(request, dict):
                raise ValueError("not an object")
        except ValueError:
            self._send(400, b"Invalid JSON data", "text/html; charset=utf-8")  # Odoo's abort
            return
        request_id = request.get("id")
        params = request.get("params", {})
        service, method, args = "web", "version_info", []
        if path == "/jsonrpc" and isinstance(params, dict):
            service, method = str(params.get("service")), str(params.get("method"))
            args = params.get("args", [])
        model, meth = service, method
        if service == "object" and isinstance(args, list) and len(args) > 4:
            model, meth = str(args[3]), str(args[4])
        rule = standin.faults.take(model, meth)
        started = time.monotonic()
        if rule and self._fault_before(rule, request_id, model, meth):
            return
        hold = rule.seconds if rule and rule.kind == "delay" and rule.phase == "inside" else 0.0
        try:
            if not isinstance(params, dict):
                raise OdooError("builtins.ValueError", "params must be a JSON object")
            if path == "/jsonrpc":
                value = standin.dispatcher.dispatch(service, method, args, self.client_address[0], hold=hold)
            else:
                if hold:
                    time.sleep(hold)  # no transaction to hold open: the same as "before"
                value = version_payload(standin.version)
            reply: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id}
            if value is not None:  # Odoo's _response omits "result" for None
                reply["result"] = value
            outcome = "ok"
        except Exception as exc:  # every failure becomes a JSON-RPC error
            debug = None if isinstance(exc, OdooError) else traceback.format_exc()
            error = serialize_error(exc, standin.major, debug)
            reply = {"jsonrpc": "2.0", "id": request_id, "error": error}
            outcome = f"error {error['data']['name']}"
        elapsed = (time.monotonic() - started) * 1000
        if rule and rule.kind == "commit_then_drop":
            log.info("%s %s.%s -> %s, reply dropped (RST) %.1fms", service, model, meth, outcome, elapsed)
            self._abort_rst()
            return
        if rule and rule.kind == "delay" and rule.phase == "after":
            time.sleep(rule.seconds)
        log.info("%s %s.%s -> %s %.1fms", service, model, meth, outcome, elapsed)
        self._send_json(200, reply)

    def _fault_before(self, rule: FaultRule, request_id: Any, model: str, meth: str, json2_call: bool = False) -> bool:
        """Apply a fault that acts before executing; True if the request is fully answered."""
        log.info("fault %s on %s.%s", rule.kind, model, meth)
        if rule.kind == "error" and json2_call:
            self._json2_error(OdooError(rule.error_name, rule.message))
        elif rule.kind == "error":
            error = serialize_error(OdooError(rule.error_name, rule.message), self.server.standin.major)
            self._send_json(200, {"jsonrpc": "2.0", "id": request_id, "error": error})
        elif rule.kind == "http_status":
            self._send_html(rule.status)
        elif rule.kind == "reset":
            self._abort_rst()
        elif rule.kind == "non_json":
            self._send(200, b"<html><body><h1>Service Unavailable</h1></body></html>", "text/html; charset=utf-8")
        elif rule.kind == "delay" and rule.phase == "before":
            time.sleep(rule.seconds)  # outside the global lock: other calls proceed
            return False
        else:
            return False
        return True

    # ------------------------------------------------------------------ JSON-2

    def _json2_served(self, path: str) -> bool:
        prefixed = path == JSON2_PREFIX or path.startswith(JSON2_PREFIX + "/")
        return prefixed and self.server.standin.major >= 19

    def _json2_error(self, exc: BaseException, debug: str | None = None) -> str:
        status, body, headers = json2.error_reply(exc, debug)
        self._send_json(status, body, headers)
        return f"{status} {body['name']}"

    def _json2(self, path: str, body: bytes) -> None:
        standin = self.server.standin
        parts = [unquote(part) for part in path[len(JSON2_PREFIX) + 1 :].split("/")]
        if len(parts) != 2 or not all(parts):
            self._json2_error(json2.http_error("NotFound", "Did you mean POST /json/2/<model>/<method>?"))
            return
        model, meth = parts
        rule = standin.faults.take(model, meth)
        started = time.monotonic()
        if rule and self._fault_before(rule, None, model, meth, json2_call=True):
            return
        hold = rule.seconds if rule and rule.kind == "delay" and rule.phase == "inside" else 0.0
        try:
            request = json2.parse_request(self.headers, body, model, meth, [standin.dispatcher.db_name])
            value = standin.dispatcher.json2_call(request, hold=hold)
            status, reply, headers, outcome = 200, value, {}, "ok"
        except Exception as exc:  # every failure becomes Odoo's JSON-2 error answer
            debug = None if isinstance(exc, OdooError) else traceback.format_exc()
            status, reply, headers = json2.error_reply(exc, debug)
            outcome = f"{status} {reply['name']}"
        elapsed = (time.monotonic() - started) * 1000
        if rule and rule.kind == "commit_then_drop":
            log.info("json2 %s.%s -> %s, reply dropped (RST) %.1fms", model, meth, outcome, elapsed)
            self._abort_rst()
            return
        if rule and rule.kind == "delay" and rule.phase == "after":
            time.sleep(rule.seconds)
        log.info("json2 %s.%s -> %s %.1fms", model, meth, outcome, elapsed)
        self._send_json(status, reply, headers)

    # ------------------------------------------------------------------ control API

    def _control(self, verb: str, path: str, body: bytes) -> None:
        standin = self.server.standin
        try:
            status, payload = standin.control(verb, path, urlsplit(self.path).query, body)
        except (ValueError, TypeError, KeyError) as exc:
            status, payload = 400, {"error": str(exc)}
        self._send_json(status, payload)


class OdooStandin:
    """An in-process Odoo JSON-RPC server; see the package docstring."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        version: str = "17.0",
        db: str = "odoo",
        login: str = "admin",
        password: str = "admin",
        api_keys: tuple[str, ...] = (),
        concurrency_retries: int = ConcurrencySettings.concurrency_retries,
        concurrency_backoff_scale: float = ConcurrencySettings.concurrency_backoff_scale,
        transaction_hold_seconds: float = ConcurrencySettings.transaction_hold_seconds,
    ) -> None:
        """The ``concurrency_*``/``transaction_hold_seconds`` settings are described in
        ``ConcurrencySettings`` (``concurrency.py``); ``configure()`` changes them later and
        ``reset()`` restores the values given here."""
        if not re.fullmatch(r"\d+\.\d+", version):
            raise ValueError(f"version must look like '17.0', got {version!r}")
        self.host, self.version = host, version
        self._requested_port = port
        settings = ConcurrencySettings(concurrency_retries, concurrency_backoff_scale, transaction_hold_seconds)
        self.dispatcher = Dispatcher(version, db, login, password, tuple(api_keys), settings)
        self.faults = FaultBook()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def major(self) -> int:
        return self.dispatcher.major

    def bind(self) -> OdooStandin:
        """Open the listening socket (so ``port``/``url`` are known) without serving yet."""
        if self._server is None:
            self._server = _Server((self.host, self._requested_port), self)
        return self

    def start(self) -> OdooStandin:
        """Serve in a daemon thread; returns self."""
        if self._thread is None:
            server = self.bind()._server
            assert server is not None
            self._thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"odoo-standin-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread (the ``__main__`` entry point) until ``stop()``."""
        server = self.bind()._server
        assert server is not None
        server.serve_forever(poll_interval=0.2)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OdooStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("stand-in not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ test control

    def add_fault(self, rule: FaultRule) -> None:
        self.faults.add(rule)

    def clear_faults(self) -> None:
        self.faults.clear()

    def effects(self, model: str | None = None, method: str | None = None) -> list[Effect]:
        with self.dispatcher.lock:
            return [
                copy.deepcopy(e)
                for e in self.dispatcher.database.effects
                if (model is None or e.model == model) and (method is None or e.method == method)
            ]

    def records(self, model: str) -> list[dict[str, Any]]:
        with self.dispatcher.lock:
            database = self.dispatcher.database
            if model not in database.schema:
                raise KeyError(f"unknown model {model!r}")
            env = Env(database, SUPERUSER_ID, {})
            rows = sorted(database.tables[model].values(), key=lambda r: int(r["id"]))
            return [copy.deepcopy(full_row(env, model, r)) for r in rows]

    @property
    def settings(self) -> ConcurrencySettings:
        return self.dispatcher.settings

    def configure(self, **changes: Any) -> ConcurrencySettings:
        """Change settings (``concurrency_retries=0``...); unknown names or bad values raise
        ``ValueError``. Calls already running keep the settings they started with."""
        with self.dispatcher.lock:
            self.dispatcher.settings = self.dispatcher.settings.updated(changes)
            return self.dispatcher.settings

    @property
    def serialization_failures(self) -> int:
        """Tries that failed with a serialization failure (retried or answered), since reset."""
        return self.dispatcher.serialization_failures

    @property
    def held_open(self) -> int:
        """Object calls holding their transaction open (snapshot taken, waiting) right now."""
        return self.dispatcher.held_open

    @property
    def login_attempts(self) -> int:
        return self.dispatcher.login_attempts

    @property
    def failed_logins(self) -> int:
        return self.dispatcher.failed_logins

    @property
    def rejected_keys(self) -> int:
        """JSON-2 requests refused with 401 (no key, or a key the database does not have)."""
        return self.dispatcher.rejected_keys

    def set_api_key(self, key: str, active: bool = True) -> None:
        """Create (``active=True``) or revoke an API key of the login user."""
        self.dispatcher.set_api_key(key, active)

    def mark_outdated(self, product_code: str, location_complete_name: str, outdated: bool = True) -> int:
        """Flag the quant so ``action_apply_inventory`` answers the conflict wizard; returns the
        quant id (created empty if missing). Sticky until cleared with ``outdated=False``."""
        return self.dispatcher.mark_outdated(product_code, location_complete_name, outdated)

    def reset(self) -> None:
        self.faults.clear()
        self.dispatcher.reset()

    def control(self, verb: str, path: str, query: str, body: bytes) -> tuple[int, Any]:
        """The ``/_standin/*`` HTTP API (JSON in, ``(status, JSON)`` out)."""
        args = {k: v[0] for k, v in parse_qs(query).items()}
        data = json.loads(body) if body.strip() else {}
        route = (verb, path.rstrip("/"))
        if route == ("POST", "/_standin/faults"):
            rule = FaultRule.from_dict(data)
            self.add_fault(rule)
            return 201, rule.to_dict()
        if route == ("GET", "/_standin/faults"):
            return 200, [r.to_dict() for r in self.faults.pending()]
        if route == ("DELETE", "/_standin/faults"):
            self.clear_faults()
            return 200, {"cleared": True}
        if route == ("GET", "/_standin/effects"):
            effects = self.effects(args.get("model") or None, args.get("method") or None)
            return 200, [e.to_dict() for e in effects]
        if verb == "GET" and path.startswith("/_standin/records/"):
            model = unquote(path[len("/_standin/records/") :])
            if model not in self.dispatcher.database.schema:
                return 404, {"error": f"unknown model {model!r}"}
            return 200, self.records(model)
        if route == ("POST", "/_standin/reset"):
            self.reset()
            return 200, {"reset": True}
        if route == ("POST", "/_standin/outdated"):
            quant_id = self.mark_outdated(data["product_code"], data["location"], bool(data.get("outdated", True)))
            return 200, {"quant_id": quant_id}
        if route == ("POST", "/_standin/api_keys"):
            self.set_api_key(str(data["key"]), active=bool(data.get("active", True)))
            return 200, {"key": data["key"], "active": bool(data.get("active", True))}
        if route == ("GET", "/_standin/stats"):
            return 200, {
                "login_attempts": self.login_attempts,
                "failed_logins": self.failed_logins,
                "rejected_keys": self.rejected_keys,
                "json2_calls": self.dispatcher.json2_calls,
                "serialization_failures": self.serialization_failures,
                "held_open": self.held_open,
            }
        if route == ("GET", "/_standin/settings"):
            return 200, self.settings.to_dict()
        if route == ("POST", "/_standin/settings"):
            if not isinstance(data, dict):
                raise ValueError("settings must be a JSON object")
            return 200, self.configure(**data).to_dict()
        return 404, {"error": f"no control route {verb} {path}"}
