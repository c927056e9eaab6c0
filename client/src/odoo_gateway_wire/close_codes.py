"""WebSocket close codes: the ones the gateway sends, and whether a client reconnects.

The rule is by numeric range, so a code this version does not know still has a meaning
(first matching row of :data:`RECONNECT_RULES` wins):

============  =========  ==============================================================
codes         reconnect  why
============  =========  ==============================================================
1009          no         message too big: the same frame would be refused again
1000-3999     yes        every other RFC/IANA code (1000 when the client did not ask,
                         1001 going away, 1006 no close frame, 1011 internal error, 1012
                         restart, 1013 try again later) and every library's (3000-3999)
4000-4007     no         the gateway refused the client's credentials or request (4001
                         auth failed, 4002 auth timeout): change something first
4008-4999     yes        the gateway's load or flow control (4008 slow consumer, 4029
                         quota): reconnect with backoff, then resume
anything else yes        no code at all (the connection dropped), or out of range
============  =========  ==============================================================

A client is free to give up on its own terms (a bound on attempts, the user closing the
app); the rule says only whether the gateway's answer forbids trying again unchanged.
"Reconnect" always means with capped exponential backoff and jitter, then ``resume``.
A forbidden Origin never gets a socket: the handshake is refused with HTTP 403.
"""

from __future__ import annotations

import enum

__all__ = ["RECONNECT_RULES", "CloseCode", "should_reconnect"]

#: (lowest, highest, reconnect), first match wins; the browser module holds the same table.
RECONNECT_RULES: tuple[tuple[int, int, bool], ...] = (
    (1009, 1009, False),
    (1000, 3999, True),
    (4000, 4007, False),
    (4008, 4999, True),
)


def should_reconnect(code: int | None) -> bool:
    """Whether a client whose socket closed with ``code`` (None: no close frame) reconnects."""
    if code is None:
        return True
    for lowest, highest, reconnect in RECONNECT_RULES:
        if lowest <= code <= highest:
            return reconnect
    return True


class CloseCode(enum.IntEnum):
    """The close codes the gateway sends."""

    NORMAL = 1000
    GOING_AWAY = 1001
    MESSAGE_TOO_BIG = 1009
    #: Also uvicorn's code for a keepalive timeout.
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    AUTH_FAILED = 4001
    AUTH_TIMEOUT = 4002
    SLOW_CONSUMER = 4008
    #: Too many sockets, frames or failed logins.
    QUOTA_EXCEEDED = 4029

    @property
    def reconnect(self) -> bool:
        return should_reconnect(self)
