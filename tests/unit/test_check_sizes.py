"""scripts/check_sizes.py: the size rule (modules <= 400 lines, functions <= 80)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "check_sizes.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_sizes", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while decorating
    spec.loader.exec_module(module)
    return module


check_sizes = _load()


def _function(name: str, body_lines: int, indent: str = "") -> str:
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(body_lines))
    return f"{indent}def {name}() -> None:\n{body}"


def _write(root: Path, rel: str, text: str) -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _run(root: Path) -> tuple[int, str]:
    proc = subprocess.run([sys.executable, str(SCRIPT), str(root)], capture_output=True,
                          text=True, check=False)
    return proc.returncode, proc.stdout


def test_a_module_over_400_lines_is_reported(tmp_path: Path) -> None:
    _write(tmp_path, "big.py", "x = 1\n" * 401)
    _write(tmp_path, "fine.py", "x = 1\n" * 400)
    code, out = _run(tmp_path)
    assert code == 1
    assert "big.py:1: module big has 401 lines (limit 400)" in out
    assert "fine.py" not in out


def test_a_function_or_method_over_80_lines_is_reported_with_its_dotted_name(
        tmp_path: Path) -> None:
    text = ("class Thing:\n" + _function("long", 80, indent="    ")
            + _function("short", 79) + "\n" + _function("outer", 2).rstrip("\n") + "\n"
            + _function("inner", 80, indent="    "))
    _write(tmp_path, "m.py", text)
    findings = check_sizes.check_file(tmp_path / "m.py")
    assert [(f.name, f.lines) for f in findings] == [("Thing.long", 81), ("outer", 84),
                                                     ("outer.inner", 81)]


def test_decorators_count_towards_a_function(tmp_path: Path) -> None:
    _write(tmp_path, "m.py", "import functools\n\n\n@functools.cache\n" + _function("f", 79))
    assert [f.name for f in check_sizes.check_file(tmp_path / "m.py")] == ["f"]


def test_size_comments_waive_a_module_or_a_function(tmp_path: Path) -> None:
    _write(tmp_path, "module.py", '"""Doc."""\n# size: one table, split would scatter it\n'
           + "x = 1\n" * 400)
    _write(tmp_path, "function.py", "import functools\n\n\n# size: a generated dispatch\n"
           "@functools.cache\n" + _function("f", 90))
    _write(tmp_path, "no_reason.py", "# size:\n" + "x = 1\n" * 400)
    code, out = _run(tmp_path)
    assert code == 1
    assert out.splitlines() == [f"{tmp_path / 'no_reason.py'}:1: module no_reason has 401 "
                                "lines (limit 400)"]


def test_migrations_are_skipped_and_a_clean_tree_exits_zero(tmp_path: Path) -> None:
    _write(tmp_path, "pkg/migrations/versions/0001_big.py", "x = 1\n" * 900)
    _write(tmp_path, "pkg/ok.py", _function("f", 10))
    assert _run(tmp_path) == (0, "")


def test_a_file_that_does_not_parse_exits_2(tmp_path: Path) -> None:
    _write(tmp_path, "broken.py", "def (:\n")
    code, _ = _run(tmp_path)
    assert code == 2


@pytest.mark.parametrize("rel", ["adapters/brokers/paper", "adapters/brokers/ccxt_venue",
                                 "adapters/identity", "devpeers", "receiving"])
def test_the_split_packages_keep_the_size_rule(rel: str) -> None:
    root = Path(__file__).resolve().parents[2] / "src" / "vanta" / rel
    assert _run(root) == (0, "")
