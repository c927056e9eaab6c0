"""The version this code runs as, from the installed package's metadata (pyproject.toml)."""

from __future__ import annotations

from importlib import metadata

__all__ = ["DISTRIBUTION", "VERSION"]

DISTRIBUTION = "odoo-submission-gateway"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a checkout that was never installed
        return "0+unknown"


VERSION = _version()
