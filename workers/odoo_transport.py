"""A lean urllib opener for odoorpc: one JSON-RPC call, one socket, as few system calls as it takes.

odoorpc sends every call through a urllib opener (``build_opener(HTTPCookieProcessor())``):
a handler chain, a cookie jar, ``http.client`` building the request in pieces and parsing
the reply's headers with the ``email`` package. With many worker threads sharing one
GIL, each system call where a thread lets go of the GIL is a place where it waits to get
it back. This opener does what urllib does for one Odoo on plain HTTP, with less:

- the same request on the wire: ``POST``, HTTP/1.1, ``Connection: close`` (Odoo's server
  closes every connection anyway: werkzeug's development server, which Odoo runs, has
  sent ``Connection: close`` since 2.1.2), urllib's ``Host``, ``User-Agent`` and
  ``Accept-Encoding`` headers, written in one ``sendall``;
- the reply read by ``http.client.HTTPResponse`` (status line, headers, chunked or
  sized body), so a malformed or cut reply raises what it raises under urllib;
- urllib's exceptions for the same failures, so :mod:`workers.classify` reads them the
  same: an ``OSError`` while connecting or sending becomes ``URLError`` (nothing may have
  reached Odoo, exactly as urllib says), a status of 300 or more becomes ``HTTPError``
  (urllib would follow a 301/302/303 as a ``GET``, which Odoo's ``/jsonrpc`` answers
  with an error page: either way the call fails), errors while reading the reply pass
  through as they are.

Not for HTTPS or a proxy from the environment (``http_proxy``...): there the worker keeps
odoorpc's own opener (:func:`lean_opener` says which).
"""

from __future__ import annotations

import http.client
import io
import socket
import sys
import urllib.error
import urllib.request
from typing import Any

__all__ = ["LeanOpener", "lean_opener"]

_USER_AGENT = f"Python-urllib/{sys.version_info[0]}.{sys.version_info[1]}"


class LeanOpener:
    """``open(request, timeout)`` as odoorpc calls it on a urllib opener."""

    def __init__(self, host: str, port: int) -> None:
        self._address = (host, port)

    def open(self, request: urllib.request.Request, timeout: float | None = None) -> io.BytesIO:
        body = request.data if isinstance(request.data, bytes) else b""
        head = [f"POST {request.selector} HTTP/1.1", f"Host: {request.host}", "Accept-Encoding: identity"]
        head += [f"{name.title()}: {value}" for name, value in request.header_items() if name.lower() != "connection"]
        head += [f"User-Agent: {_USER_AGENT}", f"Content-Length: {len(body)}", "Connection: close", "", ""]
        sock: socket.socket | None = None
        try:
            sock = socket.create_connection(self._address, timeout)
            sock.sendall("\r\n".join(head).encode("latin-1") + body)
        except OSError as exc:
            if sock is not None:
                sock.close()
            raise urllib.error.URLError(exc) from exc
        try:
            reply = http.client.HTTPResponse(sock, method="POST")
            reply.begin()
            data = reply.read()
        finally:
            sock.close()
        if not 200 <= reply.status < 300:
            raise urllib.error.HTTPError(request.full_url, reply.status, reply.reason, reply.headers, io.BytesIO(data))
        return io.BytesIO(data)


def lean_opener(scheme: str, host: str, port: int) -> Any:
    """A :class:`LeanOpener` for plain HTTP with no proxy from the environment; else None
    (odoorpc then builds its own urllib opener, as it always did)."""
    if scheme != "http":
        return None
    if urllib.request.getproxies().get("http") and not urllib.request.proxy_bypass(host):
        return None
    return LeanOpener(host, port)
