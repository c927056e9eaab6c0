"""Odoo's JSON-2 API on the wire, without I/O: the request body of a call, and what an answer means.

``POST /json/2/<model>/<method>`` takes one JSON object: the method's arguments **by name**,
plus ``ids`` (the records a record method runs on) and ``context``. Odoo answers the method's
return value as bare JSON (a recordset becomes its ids), or an HTTP error status with
``odoo.http.serialize_exception``'s object ``{"name", "message", "arguments", "context",
"debug"}`` (``Json2Dispatcher.handle_error`` in ``odoo/http``; ``addons/rpc/controllers/json2.py``).
README "Odoo APIs" has the status table and the sources.

The kinds speak ``execute_kw(model, method, args, kwargs)`` on both APIs, with one rule
(see :class:`shared.kinds.OdooCall`): ``args`` is empty, or holds only the record ids of a
method on records; every other argument is named in ``kwargs``. That is the only shape that
means the same on JSON-RPC and JSON-2, so anything else is refused here, before sending.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["Json2Error", "read_reply", "request_body"]


class Json2Error(Exception):
    """Odoo, or something in front of it, answered a JSON-2 call with an HTTP error status.

    ``name`` is Odoo's dotted exception name (``odoo.exceptions.ValidationError``) when the
    body is Odoo's error object, else ``""`` (an HTML page from a proxy, an early 18.4 bare
    string). An error object means Odoo itself answered, after rolling the request back.
    """

    def __init__(self, status: int, name: str, message: str, where: str) -> None:
        super().__init__(f"HTTP {status} from {where}: {name or 'no Odoo error object'}: {message}")
        self.status = status
        self.name = name
        self.message = message
        self.where = where


def _is_ids(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, list | tuple) and all(isinstance(i, int) and not isinstance(i, bool) for i in value)


def request_body(model: str, method: str, args: list[Any], kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON-2 body for ``execute_kw(model, method, args, kwargs)``.

    ``kwargs['context']`` becomes the body's ``context`` (JSON-RPC carries it among the
    keyword arguments; JSON-2 beside them). Raises ``TypeError`` for positional arguments
    other than record ids: JSON-2 has no positional arguments (odoo/odoo#218389).
    """
    body = dict(kwargs or {})
    if "ids" in body:
        raise TypeError(f"{model}.{method}: pass record ids as args[0], not as a keyword")
    if args:
        if len(args) != 1 or not _is_ids(args[0]):
            raise TypeError(
                f"{model}.{method} was called with positional arguments {args!r}: name every argument "
                "in kwargs (JSON-2 takes named arguments only); args may only hold the record ids"
            )
        ids = args[0]
        body["ids"] = [ids] if isinstance(ids, int) else list(ids)
    context = body.pop("context", None)
    if context:
        body["context"] = dict(context)
    return body


def _error_of(status: int, text: str, where: str) -> Json2Error:
    try:
        data: Any = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("name"), str) and "message" in data:
        return Json2Error(status, data["name"], str(data["message"]), where)
    if isinstance(data, str):  # saas-18.4's first JSON-2 answered a bare string
        return Json2Error(status, "", data, where)
    snippet = " ".join(text.split())[:200]
    return Json2Error(status, "", snippet or "(empty body)", where)


def read_reply(status: int, text: str, where: str) -> Any:
    """The call's return value, or :class:`Json2Error` for an HTTP error status.

    A 2xx answer that is not JSON raises ``json.JSONDecodeError`` (ambiguous: a proxy may
    have answered for an Odoo that committed)."""
    if 200 <= status < 300:
        value = json.loads(text)
        if isinstance(value, dict) and value.get("jsonrpc") == "2.0" and isinstance(value.get("error"), dict):
            # Not a JSON-2 answer: Odoo 17/18 has no /json/2 route and answers a JSON request it
            # cannot route with a JSON-RPC error, with HTTP 200 (werkzeug NotFound, code 404).
            error = value["error"]
            data = error.get("data") if isinstance(error.get("data"), dict) else {}
            code = error.get("code")
            raise Json2Error(
                code if code == 404 else status,
                str(data.get("name", "")),
                str(data.get("message", error.get("message", ""))),
                where,
            )
        return value
    raise _error_of(status, text, where)
