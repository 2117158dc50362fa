"""`bench/fanout.py --smoke` runs to the end and every delivery verifies. Timings are never
asserted: this only keeps the benchmark working.

The ceiling and the Celery baseline run too when Redis answers at 127.0.0.1:6379 and Celery is
installed; otherwise those checks skip with the reason (and fail with CI=true).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
FANOUT = ROOT / "bench" / "fanout.py"
SMOKE_N, SMOKE_ORDERS = 20, 3


def _baselines_unavailable() -> str | None:
    for mod in ("celery", "requests"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (the bench extra)"
    try:
        with socket.create_connection(("127.0.0.1", 6379), 2):
            return None
    except OSError:
        return "Redis is not reachable at 127.0.0.1:6379"


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str | None]:
    out = tmp_path_factory.mktemp("fanout") / "fanout.json"
    missing = _baselines_unavailable()
    args = [sys.executable, str(FANOUT), "--smoke", "--profiles", "embedded",
            "--out", str(out)]
    if missing:
        args.append("--no-baselines")
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items()
                               if not k.startswith("VANTA_")})
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    return json.loads(out.read_text()), missing


def test_fanout_smoke_completes_and_every_delivery_verifies(
    smoke: tuple[dict[str, Any], str | None],
) -> None:
    report, _ = smoke
    assert report["smoke"] is True and report["all_verified"] is True
    [r] = report["results"]
    assert r["n"] == SMOKE_N and r["orders"] == SMOKE_ORDERS
    assert r["receiver"]["failed"] == 0, r["receiver"]["failures"]
    assert r["receiver"]["verified"] >= r["expected_deliveries"]
    emb = r["paths"]["embedded"]
    assert emb["rounds"] == SMOKE_ORDERS and emb["deliveries"] == SMOKE_N * SMOKE_ORDERS


def test_fanout_smoke_baselines(smoke: tuple[dict[str, Any], str | None]) -> None:
    report, missing = smoke
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing} (CI=true: the ceiling and Celery baselines are required)")
        pytest.skip(f"ceiling and Celery baselines not run: {missing}")
    [r] = report["results"]
    for path in ("ceiling", "celery"):
        got = r["paths"][path]
        assert "not_run" not in got, got
        assert got["rounds"] == SMOKE_ORDERS and got["deliveries"] == SMOKE_N * SMOKE_ORDERS
    assert set(r["throughput_ratios"]) == {"embedded/ceiling", "embedded/celery"}


def test_burst_smoke_runs_and_reports_its_ratios(tmp_path: Path) -> None:
    """`bench/burst.py` with a tiny vault and a second of orders: it ends, every order is
    delivered (it waits for each), none is refused, and the target ratios are
    reported per profile."""
    out = tmp_path / "burst.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "burst.py"), "--followers", "3", "--clients", "2",
         "--seconds", "1", "--lone-seconds", "1", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={k: v for k, v in os.environ.items() if not k.startswith("VANTA_")})
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    r = json.loads(out.read_text())
    assert set(r["profiles"]) == {"embedded", "production"}
    ran = {name: p for name, p in r["profiles"].items() if "not_run" not in p}
    assert "embedded" in ran  # production runs where its services answer
    for p in ran.values():
        assert p["burst"]["orders"] > 0 and p["lone"]["orders"] > 0
        assert p["delivered_over_ceiling"] > 0 and p["accept_p95_over_lone_p50"] > 0
        assert p["not_201"] == {}  # nothing refused, nothing 5xx
