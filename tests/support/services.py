"""Reaching the machine's real services from tests: RabbitMQ (a fresh vhost per test
session, so runs never see each other's queues) and PostgreSQL (a fresh database)."""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from urllib.parse import quote

import pika
import psycopg
import pytest

__all__ = [
    "PG_ADMIN_URL",
    "amqp_url",
    "create_pg_database",
    "create_vhost",
    "delete_vhost",
    "drop_pg_database",
    "queue_counts",
    "require_service",
]

PG_ADMIN_URL = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def require_service(name: str, host: str, port: int, how: str) -> None:
    """Fail in CI (CI=1), skip elsewhere, with the reason and how to start the service."""
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}; start it with: {how}"
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def create_vhost() -> str:
    vhost = f"gwtest-{uuid.uuid4().hex[:10]}"
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", vhost], check=True, capture_output=True)
    subprocess.run(
        ["rabbitmqctl", "-q", "set_permissions", "-p", vhost, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
    )
    return vhost


def delete_vhost(vhost: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], check=False, capture_output=True)


def amqp_url(vhost: str, port: int = 5672) -> str:
    return f"amqp://guest:guest@127.0.0.1:{port}/{quote(vhost, safe='')}"


def queue_counts(url: str, queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue, or (-1, -1) if it does not exist."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        try:
            ok = channel.queue_declare(queue, passive=True)
        except pika.exceptions.ChannelClosedByBroker:
            return -1, -1
        return ok.method.message_count, ok.method.consumer_count
    finally:
        if connection.is_open:
            connection.close()


def create_pg_database() -> str:
    name = f"gwtest_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def drop_pg_database(url: str) -> None:
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
