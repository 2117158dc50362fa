#!/usr/bin/env python3
"""Check the size rule: modules at most 400 lines, functions and methods at most 80.

    python3 scripts/check_sizes.py [ROOT ...]        (default: src)

Every ``*.py`` file under each root is read with the standard library only. Reported:

* a module longer than ``MAX_MODULE_LINES`` lines, unless one of its first
  ``HEADER_LINES`` lines is a comment ``# size: <reason>``;
* a function or method (nested ones included) longer than ``MAX_FUNCTION_LINES`` lines,
  counted from its first decorator to its last line, unless the line right above it
  (above its decorators) is a comment ``# size: <reason>``.

Files under a ``migrations`` directory are skipped: Alembic revisions are generated and
never edited after release. A ``# size:`` comment without a reason does not count.
Exit status: 0 when nothing is reported, 1 otherwise, 2 when a file does not parse.
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
HEADER_LINES = 5
SKIPPED_DIRS = frozenset({"migrations", "__pycache__"})
_WAIVER = re.compile(r"^\s*#\s*size:\s*\S")


@dataclass(frozen=True)
class Finding:
    path: Path
    line: int
    kind: str  # "module" or "function"
    name: str
    lines: int
    limit: int

    def __str__(self) -> str:
        return (f"{self.path}:{self.line}: {self.kind} {self.name} has {self.lines} lines "
                f"(limit {self.limit})")


def python_files(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for path in sorted(root.rglob("*.py")):
        if not SKIPPED_DIRS.intersection(path.relative_to(root).parts):
            yield path


def _waived_above(lines: Sequence[str], first: int) -> bool:
    """Whether the line above 1-based line ``first`` is a ``# size: <reason>`` comment."""
    return first >= 2 and bool(_WAIVER.match(lines[first - 2]))


def _functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """Every function with a dotted name (``Class.method``, ``outer.inner``)."""
    def walk(node: ast.AST, prefix: str) -> Iterator[
            tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + child.name, child
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    yield from walk(tree, "")


def check_file(path: Path) -> list[Finding]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    findings: list[Finding] = []
    waived = any(_WAIVER.match(line) for line in lines[:HEADER_LINES])
    if len(lines) > MAX_MODULE_LINES and not waived:
        findings.append(Finding(path, 1, "module", path.stem, len(lines), MAX_MODULE_LINES))
    for name, fn in _functions(ast.parse(text, filename=str(path))):
        first = min([fn.lineno, *(d.lineno for d in fn.decorator_list)])
        size = (fn.end_lineno or fn.lineno) - first + 1
        if size > MAX_FUNCTION_LINES and not _waived_above(lines, first):
            findings.append(Finding(path, fn.lineno, "function", name, size,
                                    MAX_FUNCTION_LINES))
    return findings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*", type=Path, default=[Path("src")])
    args = parser.parse_args(argv)
    findings: list[Finding] = []
    for root in args.roots:
        if not root.exists():
            print(f"{root}: no such file or directory", file=sys.stderr)
            return 2
        for path in python_files(root):
            try:
                findings.extend(check_file(path))
            except SyntaxError as e:
                print(f"{path}: does not parse: {e}", file=sys.stderr)
                return 2
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} over the size limits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
