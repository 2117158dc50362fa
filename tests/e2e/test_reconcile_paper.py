"""Reconciliation end to end against the paper venue, as real processes on 127.0.0.1.

Two bridged followers (scales 1 and 2, each its own account at a ``vanta paper venue``)
mirror a first order. The venue is then stopped: the children of a second order exhaust
their retries and are dead-lettered, so the followers miss it. The venue comes back (same
state file, same port), a dry run over the API reports the drift without sending anything,
``vanta reconcile V1 --apply`` sends the fix-ups, the dispatcher fills them at the venue,
and the accounts end exactly proportional to the manager's position (15 × scale). A last run
finds nothing to do."""

from __future__ import annotations

import json
import subprocess
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Processes
from tests.e2e.test_bridged_sigkill import (
    VANTA,
    VENUE,
    _env,
    _run,
    _start_platform,
    _start_venue,
    _venue_url,
)

pytestmark = pytest.mark.e2e

SCALES = {"b1": "1", "b2": "2"}


def _order(http: httpx.Client, oid: str, qty: int) -> list[dict[str, Any]]:
    r = http.post("/v1/manager-orders", json={"id": oid, "vault_id": "V1", "symbol": "AAPL",
                                              "side": "buy", "qty": qty, "ref_price": "100"})
    assert r.status_code == 201, r.text
    kids = http.get(r.json()["links"]["children"])  # the 201 counts children; they are paged
    assert kids.status_code == 200, kids.text
    return list(kids.json()["data"])


def _wait_states(http: httpx.Client, fo_ids: set[str], want: str,
                 timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        r = http.get("/v1/follower-orders", params={"limit": 1000})
        states = {c["fo_id"]: c["state"] for c in r.json()["data"] if c["fo_id"] in fo_ids}
        if len(states) == len(fo_ids) and set(states.values()) == {want}:
            return
        assert time.monotonic() < deadline, (want, states)
        time.sleep(0.3)


def _positions(venue: httpx.Client, account: str) -> dict[str, Decimal]:
    r = venue.get(f"/v1/accounts/{account}/positions")
    assert r.status_code == 200, r.text
    return {s: Decimal(str(q)) for s, q in r.json()["positions"].items()}


def test_a_follower_that_missed_orders_is_brought_back_in_proportion(
        procs: Processes, tmp_path: Path) -> None:
    env = _env(tmp_path, VANTA_RETRY_SCHEDULE_SECONDS=json.dumps([0.05, 0.1]))
    state = str(tmp_path / "venue.jsonl")
    venue_proc, port_file = _start_venue(procs, tmp_path, "venue", env, "--state-file", state,
                                         "--tick-ms", "20", "--fill-steps", "1,1")
    venue_url = _venue_url(venue_proc, port_file)
    venue_port = venue_url.rsplit(":", 1)[1]
    venue = httpx.Client(base_url=venue_url, timeout=30)
    http = _start_platform(procs, tmp_path, env)
    followers: dict[str, str] = {}
    for label, scale in SCALES.items():
        r = http.post("/v1/vaults/V1/followers", json={
            "label": label, "scale": scale,
            "bridged": {"broker": "paper", "credentials": {"url": venue_url, "cash": "10000"}}})
        assert r.status_code == 201, r.text
        followers[label] = r.json()["follower_id"]
    worker = procs.start("dispatch", [*VANTA, "dispatch", "--no-until-idle"], env)

    first = _order(http, "M1", 10)
    _wait_states(http, {c["fo_id"] for c in first}, "confirmed")
    for label, scale in SCALES.items():
        assert _positions(venue, followers[label]) == {"AAPL": 10 * Decimal(scale)}

    # the venue goes away: the second order's children are dead-lettered
    venue_proc.terminate()
    venue_proc.wait(10)
    missed = _order(http, "M2", 5)
    _wait_states(http, {c["fo_id"] for c in missed}, "dlq")

    # ... and comes back with its books, on the same address
    procs.start("venue-again", [*_start_args(state, venue_port)], env)
    _wait_up(venue)
    for label, scale in SCALES.items():
        assert _positions(venue, followers[label]) == {"AAPL": 10 * Decimal(scale)}

    dry = http.post("/v1/vaults/V1/reconcile", json={})
    assert dry.status_code == 201, dry.text
    assert sorted((f["follower_id"], f["side"], f["qty"]) for f in dry.json()["fixups"]) == \
        sorted((followers[lbl], "buy", str(5 * int(s))) for lbl, s in SCALES.items())
    assert {f["positions_source"] for f in dry.json()["followers"]} == {"broker"}

    done = subprocess.run([*VANTA, "reconcile", "V1", "--tenant", "tnt_b", "--apply",
                           "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    applied = json.loads(done.stdout)
    fixups = {f["fo_id"] for f in applied["fixups"]}
    assert len(fixups) == 2 and applied["dry_run"] is False
    _wait_states(http, fixups, "confirmed")

    # the manager holds 15: every follower holds 15 × its scale, exactly
    for label, scale in SCALES.items():
        assert _positions(venue, followers[label]) == {"AAPL": 15 * Decimal(scale)}
    final = http.post("/v1/vaults/V1/reconcile", json={}).json()
    assert final["fixups"] == [] and final["blocked"] == [] and final["findings"] == []
    assert {d["drift_qty"] for d in final["drifts"]} == {"0"}
    run = http.get(f"/v1/reconciliations/{applied['id']}")
    assert run.status_code == 200 and run.json()["fixups"] == applied["fixups"]
    assert worker.poll() is None
    _run([*VANTA, "audit-verify"], env)


def _start_args(state: str, port: str) -> list[str]:
    return [*VENUE, "--port", port, "--state-file", state, "--tick-ms", "20",
            "--fill-steps", "1,1"]


def _wait_up(venue: httpx.Client, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if venue.get("/v1/admin/orders", params={"summary": 1}).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError("the venue did not come back")
