"""Hostile peers, hand-made: raw WebSocket clients that stop reading, raw HTTP heads,
signed and forged task events, and the gateway's memory as the kernel reports it."""

from __future__ import annotations

import base64
import json
import os
import socket
import struct
import time
from typing import Any

import pika

from shared.events import TaskEvent
from shared.names import EVENTS_EXCHANGE
from shared.signing import SIGNATURE_HEADER, EventSigner
from tests.support.stack import SIGNING_KEY

__all__ = ["RawWebSocket", "publish_event", "publish_events", "rss_mib", "signer"]

signer = EventSigner(SIGNING_KEY.encode())


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


class RawWebSocket:
    """A WebSocket client that does exactly what it is told: it reads only when asked,
    with a tiny receive buffer, so a peer that stops reading is a peer that stops reading."""

    def __init__(self, base: str, token: str | None, rcvbuf: int = 4096, origin: str | None = None) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect((host, int(port)))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET /v1/ws HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if token is not None:
            lines.append(f"Authorization: Bearer {token}")
        if origin is not None:
            lines.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.sock.recv(1)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            head += chunk
        self.status = int(head.split(b" ", 2)[1])
        self._buffer = b""

    def send_text(self, text: str) -> None:
        payload = text.encode()
        mask = os.urandom(4)
        header = bytes([0x81])
        if len(payload) < 126:
            header += bytes([0x80 | len(payload)])
        elif len(payload) < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", len(payload))
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_json(self, frame: dict[str, Any]) -> None:
        self.send_text(json.dumps(frame))

    def recv_frame(self, timeout: float = 10.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next frame from the server."""
        self.sock.settimeout(timeout)
        while True:
            frame = self._parse()
            if frame is not None:
                return frame
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed by the server")
            self._buffer += chunk

    def recv_json(self, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            opcode, payload = self.recv_frame(timeout)
            if opcode == 0x1:
                frame: dict[str, Any] = json.loads(payload)
                return frame
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise ConnectionError(f"close frame {code} {payload[2:].decode(errors='replace')}")

    def close_code(self, timeout: float = 10.0) -> int | None:
        """Read until the server's close frame; its code (None: the connection just ended)."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                opcode, payload = self.recv_frame(max(0.1, deadline - time.monotonic()))
                if opcode == 0x8:
                    return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        except (ConnectionError, OSError):
            return None
        raise TimeoutError("no close within the timeout")

    def gone(self, timeout: float) -> bool:
        """True once the server has ended the connection (EOF or reset), reading whatever
        is still buffered; False if it is still open after ``timeout``."""
        deadline = time.monotonic() + timeout
        self.sock.settimeout(0.2)
        while time.monotonic() < deadline:
            try:
                if not self.sock.recv(1 << 20):
                    return True
            except TimeoutError:
                continue
            except OSError:
                return True
        return False

    def _parse(self) -> tuple[int, bytes] | None:
        buf = self._buffer
        if len(buf) < 2:
            return None
        length, offset = buf[1] & 0x7F, 2
        if length == 126:
            if len(buf) < 4:
                return None
            length, offset = struct.unpack("!H", buf[2:4])[0], 4
        elif length == 127:
            if len(buf) < 10:
                return None
            length, offset = struct.unpack("!Q", buf[2:10])[0], 10
        if len(buf) < offset + length:
            return None
        self._buffer = buf[offset + length :]
        return buf[0] & 0x0F, buf[offset : offset + length]

    def close(self) -> None:
        self.sock.close()


def publish_event(
    amqp_url: str, event: TaskEvent, signature: str | None = "valid", exchange: str = EVENTS_EXCHANGE
) -> None:
    """Publish one task event as a worker would (``signature="valid"``), unsigned (None),
    or with the signature given."""
    publish_events(amqp_url, [event], signature, exchange)


def publish_events(
    amqp_url: str, events: list[TaskEvent], signature: str | None = "valid", exchange: str = EVENTS_EXCHANGE
) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        for event in events:
            body = event.model_dump_json().encode()
            headers = {}
            if signature is not None:
                headers[SIGNATURE_HEADER] = signer.sign(body) if signature == "valid" else signature
            routing_key = f"task.{event.status.value}" if exchange == EVENTS_EXCHANGE else ""
            channel.basic_publish(exchange, routing_key, body, pika.BasicProperties(delivery_mode=2, headers=headers))
    finally:
        connection.close()
