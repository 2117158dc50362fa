"""Bridged followers across a dispatcher crash: one order per child at the venue, always.

Real processes, real HTTP, 127.0.0.1 only: a paper venue (``vanta paper venue``, the simulator
in its own process, so its books outlive any dispatcher), a ``vanta serve --no-dispatcher``
API, ``tests/e2e/chaos_receiver.py`` (well behaved here) for a few webhook followers, and
``vanta dispatch --no-until-idle`` workers over one SQLite outbox.

* ``test_sigkill_mid_bridged_fan_out``: 150 bridged followers (each its own venue account,
  three different scales) and 3 webhook followers in one manager order. The first dispatcher
  is killed with SIGKILL once about a third of the bridged children are acknowledged; the
  venue holds every answer to a submit back a little after placing the order, so children
  caught in flight have an order at the venue whose ack the platform never recorded. A second
  dispatcher picks up the lapsed leases. Every bridged child ends ``confirmed`` and every
  webhook child ``ack``; the venue's admin listing shows exactly one order per child id, in
  that follower's own account, filled to the child's quantity, and no other order; only
  children in flight at the kill were submitted twice.
* ``test_a_killed_venue_comes_back_with_its_orders``: the venue itself killed with SIGKILL and
  started again on its state file answers the same orders, fills and trade ids, and a
  resubmission still finds the existing order.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Processes
from tests.e2e.processes import wait_for_file as _wait_for_file
from tests.http_helpers import UNLIMITED_ENV, add_idempotency_key_sync
from vanta.adapters.brokers.paper_remote import RemotePaperBroker
from vanta.application.ports.brokers import BrokerOrder, OrderReport, OrderStatus
from vanta.domain.orders import Side

pytestmark = pytest.mark.e2e

VANTA = [sys.executable, "-m", "vanta.entrypoints.cli.main"]
# the module entry point works whether or not `vanta paper` is mounted on the main command
VENUE = [sys.executable, "-m", "vanta.entrypoints.cli.paper_cli", "venue"]
CHAOS = [sys.executable, str(Path(__file__).with_name("chaos_receiver.py"))]
N_BRIDGED = 150
N_WEBHOOK = 3
SCALES = ("1", "2", "3")
ORDER_QTY = 7
SETTLED_BRIDGED = ("ack", "confirmed")
TERMINAL_BAD = ("failed", "dlq", "cancelled", "skipped")


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "VANTA_DATA_DIR": str(tmp_path / "data"),
            "VANTA_WEBHOOK_ALLOWLIST": '["127.0.0.1/32"]',
            "VANTA_DISPATCHER_POLL_SECONDS": "0.05",
            "VANTA_RETRY_SCHEDULE_SECONDS": json.dumps([0.05, 0.1, 0.2, 0.4]),
            **UNLIMITED_ENV, **extra}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{args[3:]} exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout


def _start_venue(procs: Processes, tmp_path: Path, name: str, env: dict[str, str],
                 *args: str) -> tuple[subprocess.Popen[bytes], Path]:
    port_file = tmp_path / f"{name}.port"
    port_file.unlink(missing_ok=True)
    proc = procs.start(name, [*VENUE, "--port", "0", "--port-file", str(port_file), *args],
                       env)
    return proc, port_file


def _venue_url(proc: subprocess.Popen[bytes], port_file: Path) -> str:
    return f"http://127.0.0.1:{_wait_for_file(port_file, proc)}"


def _start_platform(procs: Processes, tmp_path: Path, env: dict[str, str]) -> httpx.Client:
    """Tenant, vault, a token and an API-only server; returns an authenticated client."""
    _run([*VANTA, "tenant-create", "tnt_b"], env)
    vault = subprocess.Popen([*VANTA, "vault-create", "V1", "--tenant", "tnt_b"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tok = _run([*VANTA, "token", "--tenant", "tnt_b"], env).strip()
    _, err = vault.communicate(timeout=60)
    assert vault.returncode == 0, err
    port_file = tmp_path / "api.port"
    api = procs.start("api", [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                              "--port-file", str(port_file)], env)
    port = _wait_for_file(port_file, api)
    return httpx.Client(base_url=f"http://127.0.0.1:{port}",
                        headers={"Authorization": f"Bearer {tok}"}, timeout=30,
                        event_hooks={"request": [add_idempotency_key_sync]})


def _children(http: httpx.Client, mo_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/v1/manager-orders/{mo_id}")
    assert r.status_code == 200, r.text
    return r.json()["children"]


def _assert_clean_logs(procs: Processes, *names: str) -> None:
    for name in names:
        err = procs.stderr(name)
        assert "Traceback" not in err and "failed unexpectedly" not in err, (name, err[-3000:])


# ----------------------------------------------------------------------- a. dispatcher killed


def test_sigkill_mid_bridged_fan_out(procs: Processes, tmp_path: Path) -> None:
    started = time.monotonic()
    # A dead worker's rows wait for its lease; every worker takes it from its own settings.
    env = _env(tmp_path, VANTA_DISPATCHER_LEASE_SECONDS="1",
               VANTA_WEBHOOK_TIMEOUT_SECONDS="0.3", VANTA_DISPATCHER_CONCURRENCY="8")
    venue_proc, venue_port = _start_venue(
        procs, tmp_path, "venue", env, "--state-file", str(tmp_path / "venue.jsonl"),
        "--tick-ms", "25", "--fill-steps", "1,2", "--submit-delay-ms", "30", "--seed", "11")
    http = _start_platform(procs, tmp_path, env)
    venue_url = _venue_url(venue_proc, venue_port)
    venue = httpx.Client(base_url=venue_url, timeout=30)
    rcv_port_file = tmp_path / "receiver.port"
    rcv_proc = procs.start("receiver", [*CHAOS, "--port", "0", "--port-file",
                                        str(rcv_port_file), "--fail-rate", "0",
                                        "--slow-rate", "0"], env)
    rcv = httpx.Client(base_url=f"http://127.0.0.1:{_wait_for_file(rcv_port_file, rcv_proc)}",
                       timeout=30)

    def bridged(i: int) -> tuple[str, str]:
        scale = SCALES[i % len(SCALES)]
        r = http.post("/v1/vaults/V1/followers", json={
            "label": f"b{i:03d}", "scale": scale,
            "bridged": {"broker": "paper",
                        "credentials": {"url": venue_url, "cash": "1000000"}}})
        assert r.status_code == 201, r.text
        assert r.json()["bridged"] == {"broker": "paper"} and venue_url not in r.text
        return r.json()["follower_id"], scale

    def webhook(key: str) -> str:
        base = str(rcv.base_url).rstrip("/")
        r = http.post("/v1/vaults/V1/followers",
                      json={"scale": "1", "webhook": {"url": f"{base}/hooks/{key}"}})
        assert r.status_code == 201, r.text
        assert rcv.put(f"/_admin/secrets/{key}",
                       content=r.json()["webhook_secret"]).status_code == 200
        return r.json()["follower_id"]

    with ThreadPoolExecutor(8) as pool:
        scale_of = dict(pool.map(bridged, range(N_BRIDGED)))
        hooked = set(pool.map(webhook, [f"w{i}" for i in range(N_WEBHOOK)]))
    registered_s = time.monotonic() - started

    r = http.post("/v1/manager-orders", json={"id": "M-BRIDGED", "vault_id": "V1",
                                              "symbol": "AAPL", "side": "buy",
                                              "qty": ORDER_QTY, "ref_price": "100"})
    assert r.status_code == 201, r.text
    mo_id = r.json()["mo_id"]
    children = _children(http, mo_id)
    assert len(children) == N_BRIDGED + N_WEBHOOK
    qty_of = {c["fo_id"]: Decimal(c["qty"]) for c in children}
    follower_of = {c["fo_id"]: c["follower_id"] for c in children}
    bridged_ids = {fo for fo, f in follower_of.items() if f in scale_of}
    webhook_ids = {fo for fo, f in follower_of.items() if f in hooked}
    assert len(bridged_ids) == N_BRIDGED and len(webhook_ids) == N_WEBHOOK
    for fo in bridged_ids:
        assert qty_of[fo] == ORDER_QTY * Decimal(scale_of[follower_of[fo]])

    # ---- the first dispatcher, killed once about a third of the bridged children are acked.
    # The trigger is the venue's order count (cheap to poll, another process); an order is
    # placed a moment before its ack is recorded, so the acks at the kill trail it a little.
    first = procs.start("dispatch-killed", [*VANTA, "dispatch", "--no-until-idle"], env)
    deadline = time.monotonic() + 30
    placed = 0
    while placed < N_BRIDGED // 3 + 3:
        assert first.poll() is None, procs.stderr("dispatch-killed")
        assert time.monotonic() < deadline, f"only {placed} orders reached the venue"
        placed = venue.get("/v1/admin/orders", params={"summary": 1}).json()["totals"]["orders"]
        time.sleep(0.005)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL
    killed_at = time.monotonic() - started

    # Nothing dispatches now: the database is exactly as the dead worker left it.
    at_kill = {c["fo_id"]: c for c in _children(http, mo_id)}
    states_at_kill = Counter(c["state"] for fo, c in at_kill.items() if fo in bridged_ids)
    in_flight = {fo for fo in bridged_ids if at_kill[fo]["state"] == "sent"}
    acked_at_kill = states_at_kill["ack"] + states_at_kill["confirmed"]
    assert N_BRIDGED // 5 <= acked_at_kill <= N_BRIDGED // 2, states_at_kill  # about a third
    assert sum(states_at_kill.values()) == N_BRIDGED
    assert set(states_at_kill) <= {"pending", "sent", "ack", "confirmed"}, states_at_kill
    time.sleep(0.3)  # the venue finishes what the dead worker had asked (answers held 30 ms)
    venue_at_kill = venue.get("/v1/admin/orders").json()
    placed_at_kill = set(venue_at_kill["by_client_order_id"])
    # an order exists for every child the platform saw acknowledged, and no other child
    # was placed except those in flight
    assert {fo for fo in bridged_ids if at_kill[fo]["state"] in SETTLED_BRIDGED} \
        <= placed_at_kill <= {fo for fo in bridged_ids
                              if at_kill[fo]["state"] in (*SETTLED_BRIDGED, "sent")}
    placed_unacked = placed_at_kill & in_flight

    # ---- a fresh dispatcher takes over the lapsed leases and confirms every fill
    second = procs.start("dispatch-after", [*VANTA, "dispatch", "--no-until-idle"], env)
    deadline = time.monotonic() + 40
    while True:
        assert second.poll() is None, procs.stderr("dispatch-after")
        now = {c["fo_id"]: c for c in _children(http, mo_id)}
        bad = {fo: c["state"] for fo, c in now.items() if c["state"] in TERMINAL_BAD}
        assert not bad, (bad, [now[fo]["last_error"] for fo in bad][:5])
        if all(now[fo]["state"] == "confirmed" for fo in bridged_ids) and \
                all(now[fo]["state"] == "ack" for fo in webhook_ids):
            break
        assert time.monotonic() < deadline, Counter(c["state"] for c in now.values())
        time.sleep(0.5)  # the API shares the CPU with the worker; poll gently
    settled_s = time.monotonic() - started
    assert http.get(f"/v1/manager-orders/{mo_id}").json()["state"] == "completed"

    # ---- the venue's books: one order per child, in its follower's account, fully filled
    listing = venue.get("/v1/admin/orders").json()
    by_cid = listing["by_client_order_id"]
    assert set(by_cid) == bridged_ids, "an order the platform does not know, or a child " \
        "without an order"
    for fo, entry in by_cid.items():
        assert entry["count"] == 1, (fo, entry)
        assert entry["accounts"] == [follower_of[fo]], (fo, entry)
        assert Decimal(entry["qty"]) == qty_of[fo] == Decimal(entry["filled_qty"]), entry
    totals = listing["totals"]
    assert totals["orders"] == N_BRIDGED and totals["client_order_ids_held_twice"] == 0
    assert totals["refused_client_order_ids"] == 0
    assert totals["accounts"] == N_BRIDGED
    assert Decimal(totals["filled_qty"]) == sum(qty_of[fo] for fo in bridged_ids)
    assert all(row["status"] == "filled" for row in listing["orders"])
    resubmitted = {fo for fo, e in by_cid.items() if e["submits"] > 1}
    # only children in flight when the worker died were ever submitted again, once each
    assert resubmitted <= in_flight, resubmitted - in_flight
    assert all(by_cid[fo]["submits"] <= 2 for fo in resubmitted)
    assert placed_unacked <= resubmitted  # a placed order whose ack was lost: found again

    # ---- the platform's view agrees
    final = {c["fo_id"]: c for c in _children(http, mo_id)}

    def attempts(fo: str) -> tuple[str, list[str]]:
        r = http.get(f"/v1/follower-orders/{fo}/attempts")
        assert r.status_code == 200, r.text
        return fo, [a["outcome"] for a in r.json()["data"]]

    with ThreadPoolExecutor(4) as pool:
        outcomes_of = dict(pool.map(attempts, sorted(bridged_ids)))
    lost_rows = 0
    for fo in bridged_ids:
        c = final[fo]
        assert Decimal(c["filled_qty"]) == qty_of[fo] and c["avg_fill_price"], c
        assert c["broker_order_ref"], c
        outcomes = outcomes_of[fo]
        if fo in in_flight:
            assert outcomes == ["lost", "ack"], (fo, outcomes)
            lost_rows += 1
        else:
            assert outcomes == ["ack"], (fo, outcomes)
    rcv_ids = rcv.get("/_admin/state").json()["ids"]
    assert set(rcv_ids) == webhook_ids  # the webhook path, side by side
    assert all(s["applied"] == 1 for s in rcv_ids.values())
    _assert_clean_logs(procs, "dispatch-after", "api", "venue", "receiver")

    print("\n[bridged_sigkill] " + json.dumps({
        "bridged": N_BRIDGED, "webhook": N_WEBHOOK, "register_s": round(registered_s, 1),
        "killed_at_s": round(killed_at, 1), "states_at_kill": dict(states_at_kill),
        "in_flight_at_kill": len(in_flight), "placed_but_unacked_at_kill": len(placed_unacked),
        "resubmitted": len(resubmitted), "venue_submit_requests": totals["submit_requests"],
        "attempt_rows_lost_with_the_worker": lost_rows, "total_s": round(settled_s, 1)},
        sort_keys=True))
    assert venue_proc.poll() is None


# ----------------------------------------------------------------------- b. venue killed


def _order(cid: str, qty: int) -> BrokerOrder:
    return BrokerOrder(client_order_id=cid, symbol="AAPL", side=Side.BUY, qty=Decimal(qty))


async def _place_and_fill(url: str, cids: list[str]) -> list[OrderReport]:
    broker = RemotePaperBroker(url, "acct-kill", timeout=5, cash="50000")
    try:
        broker.set_price("AAPL", Decimal("100"))
        for n, cid in enumerate(cids, 1):
            await broker.submit(_order(cid, n))
        deadline = time.monotonic() + 10
        while True:
            reports = [await broker.order_report(c) for c in cids]
            if all(r.status is OrderStatus.FILLED for r in reports):
                return reports
            assert time.monotonic() < deadline, reports
            await asyncio.sleep(0.05)
    finally:
        await broker.close()


async def _after_restart(url: str, cids: list[str]) -> tuple[list[OrderReport], list[str]]:
    broker = RemotePaperBroker(url, "acct-kill", timeout=5, cash="50000")
    try:
        reports = [await broker.order_report(c) for c in cids]
        acks = [await broker.submit(_order(c, n)) for n, c in enumerate(cids, 1)]
        return reports, [a.broker_order_id for a in acks]
    finally:
        await broker.close()


def test_a_killed_venue_comes_back_with_its_orders(procs: Processes, tmp_path: Path) -> None:
    env = _env(tmp_path)
    state = tmp_path / "venue.jsonl"
    args = ("--state-file", str(state), "--tick-ms", "20", "--fill-steps", "2,3")
    proc, port_file = _start_venue(procs, tmp_path, "venue-1", env, *args)
    url = _venue_url(proc, port_file)
    cids = [f"child-{i}" for i in range(5)]
    before = asyncio.run(_place_and_fill(url, cids))
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(10) == -signal.SIGKILL

    proc, port_file = _start_venue(procs, tmp_path, "venue-2", env, *args)
    url = _venue_url(proc, port_file)
    after, broker_ids = asyncio.run(_after_restart(url, cids))
    assert after == before  # the same orders, fills and trade ids
    assert broker_ids == [r.broker_order_id for r in before]
    listing = httpx.get(f"{url}/v1/admin/orders", timeout=10).json()
    assert listing["totals"]["orders"] == len(cids)
    assert all(e["count"] == 1 and e["submits"] == 2
               for e in listing["by_client_order_id"].values())
    _assert_clean_logs(procs, "venue-1", "venue-2")
    assert proc.poll() is None
