"""The client's modules import each other in one direction only (no cycles, not even under
TYPE_CHECKING), and the wire module imports nothing of the client's or the server's."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).parents[1] / "src"
PACKAGES = ("odoo_gateway_client", "odoo_gateway_wire")


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for package in PACKAGES:
        for path in (SRC / package).glob("*.py"):
            module = package if path.stem == "__init__" else f"{package}.{path.stem}"
            graph[module] = _imports(path)
    return graph


def test_no_import_cycle_among_modules() -> None:
    graph = _graph()
    # Package __init__ files re-export; the modules themselves must form a DAG.
    edges = {m: {d for d in deps if d in graph and d not in PACKAGES} for m, deps in graph.items() if m not in PACKAGES}
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(module: str, trail: list[str]) -> None:
        if module in done:
            return
        assert module not in visiting, "import cycle: " + " -> ".join([*trail, module])
        visiting.add(module)
        for dep in sorted(edges[module]):
            visit(dep, [*trail, module])
        visiting.discard(module)
        done.add(module)

    for module in sorted(edges):
        visit(module, [])
    assert len(done) >= 15


def test_wire_depends_on_the_standard_library_only() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    for module, deps in _graph().items():
        if module.startswith("odoo_gateway_wire"):
            foreign = {d for d in deps if d.split(".")[0] not in stdlib and not d.startswith("odoo_gateway_wire")}
            assert not foreign, f"{module} imports {foreign}"


def test_client_imports_only_its_declared_dependencies() -> None:
    allowed = set(sys.stdlib_module_names) | {"__future__", "httpx", "websockets", *PACKAGES}
    for module, deps in _graph().items():
        foreign = {d for d in deps if d.split(".")[0] not in allowed}
        assert not foreign, f"{module} imports {foreign}"
