"""A server frame encoded once, however many sockets get it.

A pushed event goes to every socket that watches its task. Its JSON text is the same for
every socket of one form (v1 or compact), and so are its bytes on the wire: a server
never masks its frames, and the gateway negotiates no extension (per-message deflate is
off). So the text is encoded once, and the WebSocket frame around it is built once, on
first use; each socket then gets the same ``bytes`` object, written as it is
(``send_text_now`` in transport.py). Plain code with no I/O.
"""

from __future__ import annotations

from websockets.frames import Frame, Opcode

__all__ = ["EncodedFrame"]


class EncodedFrame:
    __slots__ = ("text", "_wire")

    def __init__(self, text: str) -> None:
        self.text = text
        self._wire: bytes | None = None

    def __len__(self) -> int:
        """What it counts against a socket's send queue bound."""
        return len(self.text)

    @property
    def wire(self) -> bytes:
        """The whole WebSocket frame: final, unmasked, no extension (RFC 6455, 5.2)."""
        if self._wire is None:
            self._wire = Frame(Opcode.TEXT, self.text.encode()).serialize(mask=False, extensions=[])
        return self._wire
