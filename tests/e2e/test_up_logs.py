"""``vanta up`` writes the log folder: JSON lines in ``<data>/logs/vanta.log``, one
``mirror_dispatch.log`` line per delivery attempt and ``trade_log.jsonl`` lines per child
state change, each with the order's correlation ids."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import Processes
from tests.e2e.test_up_commands import _free_port, _wait_ready

VANTA = Path(sys.executable).with_name("vanta")
pytestmark = pytest.mark.e2e


def _json_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.skipif(not VANTA.exists(), reason="the vanta console script is not installed")
def test_vanta_up_writes_json_logs_with_correlation_ids(tmp_path: Path,
                                                        procs: Processes) -> None:
    port, rport = _free_port(), _free_port()
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "400"}
    env.pop("VANTA_DATA_DIR", None)
    proc = procs.start("up", [str(VANTA), "up", "--port", str(port), "--receiver-port",
                              str(rport), "--data-dir", str(data)], env)
    api = f"http://127.0.0.1:{port}"
    _wait_ready(api, proc, procs.logs / "up.out")
    token = subprocess.run([str(VANTA), "token", "--data-dir", str(data)], env=env,
                           capture_output=True, text=True, timeout=60, check=True).stdout
    r = httpx.post(f"{api}/v1/manager-orders", headers={
        "Authorization": f"Bearer {token.strip()}", "Idempotency-Key": "k-1",
        "X-Request-ID": "req-logs-1"}, json={"vault_id": "V_CORE", "symbol": "AAPL",
                                             "side": "buy", "qty": "10", "ref_price": "100"},
        timeout=30)
    assert r.status_code == 201, r.text
    mo_id = r.json()["mo_id"]
    logs = data / "logs"
    deadline = time.monotonic() + 30
    attempts: list[dict[str, object]] = []
    while time.monotonic() < deadline:
        attempts = [a for a in _json_lines(logs / "mirror_dispatch.log")
                    if a.get("mo_id") == mo_id]
        if attempts and any(a.get("event") == "request" and a.get("request_id")
                            == "req-logs-1" for a in _json_lines(logs / "vanta.log")):
            break
        time.sleep(0.2)
    assert attempts, "no delivery attempt line"
    for a in attempts:
        assert a["event"] == "delivery attempt" and a["attempt"] == 1
        assert a["fo_id"] and a["follower_id"] and a["outcome"] and "latency_ms" in a
    trades = [t for t in _json_lines(logs / "trade_log.jsonl") if t.get("mo_id") == mo_id]
    assert {(t["from"], t["to"]) for t in trades} >= {(None, "pending"), ("pending", "sent")}
    request_lines = [x for x in _json_lines(logs / "vanta.log")
                     if x.get("request_id") == "req-logs-1"]
    assert request_lines and all(x["correlation_id"] == "req-logs-1" for x in request_lines)
