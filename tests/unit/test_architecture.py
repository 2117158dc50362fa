"""The application layer imports only the domain, its own modules (ports included) and the
standard library: no adapters, entrypoints, composition root or I/O libraries."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import vanta.application

APPLICATION = Path(vanta.application.__file__).parent


def _imports(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def _allowed(module: str) -> bool:
    top = module.split(".")[0]
    if top == "vanta":
        return module.startswith(("vanta.domain", "vanta.application"))
    return top in sys.stdlib_module_names or top == "__future__"


def test_application_imports_only_domain_ports_and_stdlib() -> None:
    modules = list(APPLICATION.rglob("*.py"))
    assert len(modules) > 20
    bad = {f"{p.relative_to(APPLICATION)}: {m}" for p in modules for m in _imports(p)
           if not _allowed(m)}
    assert bad == set()


def test_ports_import_nothing_but_domain_ports_and_stdlib() -> None:
    for p in (APPLICATION / "ports").glob("*.py"):
        for m in _imports(p):
            assert m.startswith(("vanta.domain", "vanta.application.ports")) or \
                   m.split(".")[0] in sys.stdlib_module_names or m == "__future__", (p, m)


def test_entrypoints_import_no_adapter() -> None:
    """Contract (d): the API, the CLI and the workers get adapters from vanta.bootstrap."""
    import vanta.entrypoints
    root = Path(vanta.entrypoints.__file__).parent
    bad = {f"{p.relative_to(root)}: {m}" for p in root.rglob("*.py") for m in _imports(p)
           if m == "vanta.adapters" or m.startswith("vanta.adapters.")}
    assert bad == set()
