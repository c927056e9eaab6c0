"""Test-wide settings. Integration fixtures live in tests/integration/conftest.py."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The chaos suite restarts this machine's RabbitMQ: run it after everything else."""
    items.sort(key=lambda item: "tests/chaos/" in item.nodeid.replace("\\", "/"))
