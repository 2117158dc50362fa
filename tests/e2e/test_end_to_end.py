"""A real server process, a real receiver process, real HTTP and real signatures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.processes import wait_for_file as _wait_for_file
from tests.http_helpers import UNLIMITED_ENV, add_idempotency_key_sync

pytestmark = pytest.mark.e2e
VANTA = [sys.executable, "-m", "vanta.entrypoints.cli.main"]


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    return {**os.environ, "VANTA_DATA_DIR": str(tmp_path / "data"),
            "VANTA_DISPATCHER_POLL_SECONDS": "0.05",
            "VANTA_WEBHOOK_ALLOWLIST": '["127.0.0.1/32"]', **UNLIMITED_ENV}


@pytest.fixture
def receiver(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    port_file = tmp_path / "receiver.port"
    proc = subprocess.Popen([sys.executable, "-m", "vanta.devpeers.receiver", "--port", "0",
                             "--port-file", str(port_file)], env=env)
    try:
        yield f"http://127.0.0.1:{_wait_for_file(port_file, proc)}"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def server(tmp_path: Path, env: dict[str, str]) -> Iterator[str]:
    subprocess.run([*VANTA, "tenant-create", "tnt_a", "--name", "Alpha"], env=env, check=True)
    subprocess.run([*VANTA, "vault-create", "V1", "--tenant", "tnt_a"], env=env, check=True)
    port_file = tmp_path / "api.port"
    proc = subprocess.Popen([*VANTA, "serve", "--port", "0", "--port-file", str(port_file)],
                            env=env)
    try:
        yield f"http://127.0.0.1:{_wait_for_file(port_file, proc)}"
    finally:
        proc.terminate()
        proc.wait(10)


def _token(env: dict[str, str], tenant: str, *scopes: str) -> str:
    args = [*VANTA, "token", "--tenant", tenant]
    for s in scopes:
        args += ["--scope", s]
    return subprocess.run(args, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


def _settle(http: httpx.Client, mo_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = http.get(f"/v1/manager-orders/{mo_id}").json()
        if all(c["state"] not in ("pending", "sent", "retry") for c in body["children"]):
            return body
        time.sleep(0.05)
    raise TimeoutError("children did not settle")


def test_order_is_mirrored_signed_and_acknowledged(
    server: str, receiver: str, env: dict[str, str], tmp_path: Path
) -> None:
    tok = _token(env, "tnt_a")
    http = httpx.Client(base_url=server, headers={"Authorization": f"Bearer {tok}"}, timeout=10,
                        event_hooks={"request": [add_idempotency_key_sync]})
    rcv = httpx.Client(base_url=receiver, timeout=10)

    specs = {"small": {"scale": "0.2"}, "capped": {"scale": "1", "max_pos_usd": 2500,
                                                   "mode": "capped", "plan": "pro"},
             "killed": {"scale": "1", "kill_switch": True}}
    ids = {}
    for key, spec in specs.items():
        r = http.post("/v1/vaults/V1/followers",
                      json={**spec, "webhook": {"url": f"{receiver}/hooks/{key}"}})
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["webhook_secret"].startswith("whsec_")
        assert "hmac_key_ref" not in body
        ids[key] = body["follower_id"]
        rcv.put(f"/_admin/secrets/{key}", content=body["webhook_secret"])

    r = http.post("/v1/manager-orders", json={"id": "M-1", "vault_id": "V1", "symbol": "AAPL",
                                              "side": "buy", "qty": 37, "ref_price": 190})
    assert r.status_code == 201, r.text
    settled = _settle(http, r.json()["mo_id"])
    by_follower = {c["follower_id"]: c for c in settled["children"]}
    assert by_follower[ids["small"]]["qty"] == "7"  # floor(37 * 0.2)
    assert by_follower[ids["small"]]["state"] == "ack"
    assert by_follower[ids["capped"]]["qty"] == "13"  # 13 * 190 <= 2500
    assert by_follower[ids["capped"]]["cap_applied"] is True
    assert by_follower[ids["capped"]]["state"] == "ack"
    assert by_follower[ids["killed"]]["state"] == "skipped"
    assert by_follower[ids["killed"]]["skip_reason"] == "kill_switch"
    assert settled["state"] == "completed"

    seen = rcv.get("/_admin/deliveries").json()
    assert all(d["verified"] for d in seen["deliveries"])
    applied = seen["applied"]
    assert set(applied) == {by_follower[ids["small"]]["fo_id"], by_follower[ids["capped"]]["fo_id"]}
    small = applied[by_follower[ids["small"]]["fo_id"]]
    assert small["qty"] == 7 and small["side"] == "buy" and small["symbol"] == "AAPL"
    assert small["meta"]["manager_order_id"] == "M-1"
    assert small["follower_id"] == ids["small"]

    attempts = http.get(f"/v1/follower-orders/{by_follower[ids['small']]['fo_id']}/attempts")
    assert attempts.json()["data"][0]["status_code"] == 200

    # the same order again changes nothing
    again = http.post("/v1/manager-orders", json={"id": "M-1", "vault_id": "V1",
                                                  "symbol": "AAPL", "side": "buy", "qty": 37,
                                                  "ref_price": 190})
    assert again.status_code == 200 and again.json()["created"] is False

    # a file ingested twice takes effect once
    queue = tmp_path / "autotrade_queue.json"
    queue.write_text(json.dumps([{"id": "M-2", "vault_id": "V1", "symbol": "MSFT",
                                  "side": "buy", "qty": 10, "ref_price": 100}]))
    for _ in range(2):
        subprocess.run([*VANTA, "ingest", str(queue), "--tenant", "tnt_a"], env=env,
                       check=True, capture_output=True)
    orders = http.get("/v1/manager-orders").json()["data"]
    assert [o["id"] for o in orders] == ["M-1", "M-2"]
    _settle(http, orders[1]["mo_id"])
    fos = http.get("/v1/follower-orders", params={"follower_id": ids["small"]}).json()["data"]
    assert [(f["symbol"], f["qty"], f["state"]) for f in fos] == [("AAPL", "7", "ack"),
                                                                   ("MSFT", "2", "ack")]

    subprocess.run([*VANTA, "audit-verify"], env=env, check=True, capture_output=True)
