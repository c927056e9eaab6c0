"""Odoo's JSON-2 API (Odoo 19; saas~18.4) as the stand-in speaks it: ``POST /json/2/<model>/<method>``.

Follows ``addons/rpc/controllers/json2.py`` (the route) and ``odoo/http`` ``Json2Dispatcher``
(body parsing, error answers), ``ir.http._auth_method_bearer`` (the key) and
``odoo/exceptions.py`` (``http_status``):

- ``Authorization: bearer <key>`` (``^bearer\\s+(.+)$``, any case), checked against the API
  keys of the database; none: 401 'User not authenticated, use the "Authorization" header';
  unknown or revoked: 401 "Invalid apikey"; both with ``WWW-Authenticate: Bearer``.
- ``X-Odoo-Database`` picks the database; without it the only one is used (monodb).
- The body is one JSON object: ``ids`` (records of a record method; refused with 422 on an
  ``@api.model`` one), ``context``, and the method's arguments **by name** (a signature that
  does not bind: 422). The answer is the bare JSON value (a created record: its ids).
- Errors: ``serialize_exception`` ``{"name", "message", "arguments", "context", "debug"}``
  with ``UserError``/``ValidationError`` 422, ``AccessError``/``AccessDenied`` 403,
  ``MissingError`` 404, ``LockError`` 409, werkzeug errors their own code, anything else 500.
- One transaction per request, retried on serialization failures like ``/jsonrpc`` calls.

Simplifications: an unknown ``X-Odoo-Database`` is a 404 (the route needs a database); a body
that is not ``application/json`` is a 415.
"""

from __future__ import annotations

import inspect
import json
import re
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .models import METHODS, Env, OdooError

HTTP_STATUS = {
    "odoo.exceptions.UserError": 422,
    "odoo.exceptions.ValidationError": 422,
    "odoo.exceptions.AccessError": 403,
    "odoo.exceptions.AccessDenied": 403,
    "odoo.exceptions.MissingError": 404,
    "odoo.exceptions.LockError": 409,
    "werkzeug.exceptions.BadRequest": 400,
    "werkzeug.exceptions.Unauthorized": 401,
    "werkzeug.exceptions.NotFound": 404,
    "werkzeug.exceptions.MethodNotAllowed": 405,
    "werkzeug.exceptions.UnsupportedMediaType": 415,
    "werkzeug.exceptions.UnprocessableEntity": 422,
}
BEARER = re.compile(r"^bearer\s+(.+)$", re.IGNORECASE)
NOT_AUTHENTICATED = 'User not authenticated, use the "Authorization" header'


def http_error(name: str, message: str) -> OdooError:
    return OdooError(f"werkzeug.exceptions.{name}", message)


def status_of(name: str) -> int:
    return HTTP_STATUS.get(name, 500)


def error_reply(exc: BaseException, debug: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) for a failed call, as ``Json2Dispatcher.handle_error``."""
    if isinstance(exc, OdooError):
        name, message = exc.name, exc.message
    else:  # a bug in the stand-in surfaces like any Python error in Odoo
        name, message = f"{type(exc).__module__}.{type(exc).__name__}", str(exc)
        debug = debug or traceback.format_exc()
    status = status_of(name)
    arguments: list[Any] = [message, status] if name.startswith("werkzeug.") else [message]
    if debug is None:
        debug = f'Traceback (most recent call last):\n  File "/odoo/odoo/http.py", line 2212\n{name}: {message}\n'
    if name == "odoo.exceptions.AccessDenied":
        debug = ""  # AccessDenied.suppress_traceback()
    body = {"name": name, "message": message, "arguments": arguments, "context": {}, "debug": debug}
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return status, body, headers


@dataclass(frozen=True)
class Json2Request:
    db: str
    token: str
    model: str
    method: str
    ids: list[int]
    context: dict[str, Any]
    kwargs: dict[str, Any]


def parse_request(
    headers: Mapping[str, str], body: bytes, model: str, method: str, db_names: list[str]
) -> Json2Request:
    """Read one request, or raise the ``OdooError`` Odoo would answer (before any transaction)."""
    db = headers.get("X-Odoo-Database") or (db_names[0] if len(db_names) == 1 else "")
    if db not in db_names:
        raise http_error("NotFound", "The requested URL was not found on the server.")
    mimetype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
    if body and mimetype != "application/json":
        raise http_error("UnsupportedMediaType", f"expected application/json, got {mimetype or 'nothing'}")
    match = BEARER.match(headers.get("Authorization") or "")
    if match is None:
        raise http_error("Unauthorized", NOT_AUTHENTICATED)
    params: Any = {}
    if body:
        try:
            params = json.loads(body)
        except ValueError as exc:
            raise http_error("BadRequest", f"could not parse the body as json: {exc.args[0]}") from None
        if not isinstance(params, dict):
            raise http_error("BadRequest", "could not parse the body, expecting a json object")
    ids = params.pop("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        raise OdooError("builtins.ValueError", f"Invalid ids {ids!r}")
    context = params.pop("context", {})
    if not isinstance(context, dict):
        raise OdooError("builtins.TypeError", "context must be a dictionary")
    return Json2Request(db, match.group(1).strip(), model, method, ids, context, params)


def call(env: Env, request: Json2Request) -> Any:
    """``web_json_2_rpc``: find the public method, bind the named arguments, run it."""
    model, name = request.model, request.method
    if model not in env.db.schema:
        raise http_error("NotFound", f"the model {model!r} does not exist")
    if name.startswith("_"):  # get_public_method
        raise OdooError(
            "odoo.exceptions.AccessError", f"Private methods (such as '{model}.{name}') cannot be called remotely."
        )
    spec = METHODS.get((model, name)) or METHODS.get((None, name))
    if spec is None or not spec.versions[0] <= env.major <= spec.versions[1]:
        raise http_error("NotFound", f"The method '{model}.{name}' does not exist")
    if not spec.on_records and request.ids:
        raise http_error("UnprocessableEntity", f"cannot call {model}.{name} with ids")
    bound: list[Any] = [env, model, list(request.ids)] if spec.on_records else [env, model]
    try:
        inspect.signature(spec.fn).bind(*bound, **request.kwargs)
    except TypeError as exc:
        raise http_error("UnprocessableEntity", str(exc.args[0])) from None
    result = spec.fn(*bound, **request.kwargs)
    # A recordset answers its ids: Odoo's create() returns records even for one dict, where
    # JSON-RPC's _call_kw_model_create answers a bare id.
    if name == "create" and isinstance(result, int) and not isinstance(result, bool):
        return [result]
    return result
