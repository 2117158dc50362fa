"""`bench/studio.py` runs to the end on a small history, and the same run twice gives the same
hash (the script checks it). Timings are never asserted: this only keeps the benchmark
working."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_studio_bench_smoke(tmp_path: Path) -> None:
    out = tmp_path / "studio.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "studio.py"), "--orders", "120", "--runs", "2",
         "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("VANTA_")})
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    report = json.loads(out.read_text())
    assert [(r["orders"], r["configs"]) for r in report["results"]] == [(120, 1), (120, 8)]
