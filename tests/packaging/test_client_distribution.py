"""The client installs and runs without the server: a fresh virtualenv gets ``./client``
(and its test extra) from nothing, holds none of the server's dependencies, and passes the
client's own tests there. Needs PyPI (or pip's cache) for httpx, websockets and pytest."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SERVER_ONLY = {"starlette", "uvicorn", "dramatiq", "aio-pika", "aiormq", "pika", "odoorpc", "pydantic", "psycopg"}


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def client_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the venv's bin directory, a copy of client/ it was installed from)."""
    work = tmp_path_factory.mktemp("client-dist")
    source = work / "client"
    shutil.copytree(ROOT / "client", source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    _run(sys.executable, "-m", "venv", work / "venv", cwd=work)
    bin_dir = work / "venv" / "bin"
    _run(bin_dir / "python", "-m", "pip", "install", "--quiet", f"{source}[test]", cwd=work)
    return bin_dir, source


def test_no_server_dependency_is_installed(client_venv: tuple[Path, Path]) -> None:
    bin_dir, source = client_venv
    installed = {
        line.split("==")[0].lower() for line in _run(bin_dir / "python", "-m", "pip", "freeze", cwd=source).split()
    }
    assert {"odoo-gateway-client", "httpx", "websockets"} <= installed
    assert not installed & SERVER_ONLY, f"server dependencies in the client's environment: {installed & SERVER_ONLY}"


def test_public_api_imports_and_is_typed(client_venv: tuple[Path, Path]) -> None:
    bin_dir, source = client_venv
    script = (
        "import importlib.resources, sys\n"
        "import odoo_gateway_client, odoo_gateway_wire\n"
        "from odoo_gateway_client import GatewayClient, SyncClient, TaskStatus\n"
        "assert TaskStatus.SUCCEEDED.final\n"
        "for package in ('odoo_gateway_client', 'odoo_gateway_wire'):\n"
        "    assert importlib.resources.files(package).joinpath('py.typed').is_file(), package\n"
        "names = {name.split('.')[0] for name in sys.modules}\n"
        "assert not names & {'gateway', 'shared', 'workers', 'client', 'pydantic', 'starlette'}, names\n"
        "print('ok')\n"
    )
    assert _run(bin_dir / "python", "-c", script, cwd=source.parent).strip() == "ok"
    assert "submit" in _run(bin_dir / "gwctl", "--help", cwd=source.parent)


def test_client_tests_pass_in_the_client_only_environment(client_venv: tuple[Path, Path]) -> None:
    bin_dir, source = client_venv
    out = _run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=source)
    assert " passed" in out and "failed" not in out
