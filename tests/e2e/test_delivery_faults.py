"""Webhook delivery under faults: nothing is lost, nothing is applied twice.

Real processes and real HTTP on 127.0.0.1 only: a ``vanta serve --no-dispatcher`` API, one or
more ``vanta dispatch --no-until-idle`` workers leasing rows from one SQLite outbox, and
``tests/e2e/chaos_receiver.py``, an idempotent receiver that verifies both signatures and
misbehaves on purpose (5xx, 429, hangs past the sender's timeout, TCP resets, effects whose
answer is lost).

* ``test_random_faults_two_dispatchers``: every dispatchable child ends ``ack`` or ``dlq``;
  an ``ack`` was applied exactly once at the receiver; always-failing endpoints end in
  ``dlq`` after exactly the configured retries; the attempt log is gap-free and bounded; the
  receiver never saw more requests for a child than the platform logged attempts.
* ``test_sigkill_mid_fan_out``: a dispatcher killed with SIGKILL in the middle of a fan-out
  to 400 followers; a fresh worker picks up the lapsed leases. Every child ends ``ack`` and
  the receiver applied every webhook-id exactly once. The redeliveries the crash caused are
  counted and shown to come only from children that were in flight when it died.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.processes import Processes
from tests.e2e.processes import wait_for_file as _wait_for_file
from tests.http_helpers import UNLIMITED_ENV, add_idempotency_key_sync

pytestmark = pytest.mark.e2e

VANTA = [sys.executable, "-m", "vanta.entrypoints.cli.main"]
CHAOS = [sys.executable, str(Path(__file__).with_name("chaos_receiver.py"))]
OPEN_STATES = ("pending", "sent", "retry")
RETRY_SCHEDULE = [0.05, 0.1, 0.2, 0.4]
FAULTS = ("http_500", "http_502", "http_503", "http_429", "timeout", "reset", "lost_answer")
SEED = int(os.environ.get("VANTA_CHAOS_SEED", "20240611"))


# --------------------------------------------------------------------------- processes


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "VANTA_DATA_DIR": str(tmp_path / "data"),
            "VANTA_WEBHOOK_ALLOWLIST": '["127.0.0.1/32"]',
            "VANTA_DISPATCHER_POLL_SECONDS": "0.05",
            "VANTA_RETRY_SCHEDULE_SECONDS": json.dumps(RETRY_SCHEDULE),
            "VANTA_RETRY_JITTER_FRACTION": "0.2",
            **UNLIMITED_ENV,  # hundreds of registrations and polls from one client
            **extra}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{args[3:]} exited {done.returncode}: {done.stderr[-3000:]}"
    return done.stdout


def _start_platform(procs: Processes, tmp_path: Path, env: dict[str, str]) -> httpx.Client:
    """Tenant, vault, a token and an API-only server; returns an authenticated client."""
    _run([*VANTA, "tenant-create", "tnt_f"], env)
    vault = subprocess.Popen([*VANTA, "vault-create", "V1", "--tenant", "tnt_f"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    tok = _run([*VANTA, "token", "--tenant", "tnt_f"], env).strip()
    _, err = vault.communicate(timeout=60)
    assert vault.returncode == 0, err
    port_file = tmp_path / "api.port"
    api = procs.start("api", [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                              "--port-file", str(port_file)], env)
    port = _wait_for_file(port_file, api)
    return httpx.Client(base_url=f"http://127.0.0.1:{port}",
                        headers={"Authorization": f"Bearer {tok}"}, timeout=30,
                        event_hooks={"request": [add_idempotency_key_sync]})


def _start_receiver(procs: Processes, tmp_path: Path, env: dict[str, str],
                    *args: str) -> httpx.Client:
    port_file = tmp_path / "receiver.port"
    proc = procs.start("receiver", [*CHAOS, "--port", "0", "--port-file", str(port_file),
                                    "--seed", str(SEED), "--log",
                                    str(tmp_path / "receiver.jsonl"), *args], env)
    return httpx.Client(base_url=f"http://127.0.0.1:{_wait_for_file(port_file, proc)}",
                        timeout=30)


def _start_dispatcher(procs: Processes, name: str,
                      env: dict[str, str]) -> subprocess.Popen[bytes]:
    return procs.start(name, [*VANTA, "dispatch", "--no-until-idle"], env)


def _register(http: httpx.Client, rcv: httpx.Client, keys: list[str],
              spec: dict[str, Any] | None = None) -> dict[str, str]:
    """One follower per key at ``{receiver}/hooks/{key}``; returns key -> follower_id."""
    base = str(rcv.base_url).rstrip("/")

    def one(key: str) -> tuple[str, str]:
        r = http.post("/v1/vaults/V1/followers",
                      json={"scale": "1", **(spec or {}),
                            "webhook": {"url": f"{base}/hooks/{key}"}})
        assert r.status_code == 201, r.text
        body = r.json()
        assert rcv.put(f"/_admin/secrets/{key}",
                       content=body["webhook_secret"]).status_code == 200
        return key, body["follower_id"]

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, keys))


def _children(http: httpx.Client, mo_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/v1/manager-orders/{mo_id}")
    assert r.status_code == 200, r.text
    return r.json()["children"]


def _settle(http: httpx.Client, mo_ids: list[str], timeout: float,
            on_poll: Callable[[], None] | None = None) -> list[dict[str, Any]]:
    """All children of these orders once none is pending/sent/retry (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        if on_poll is not None:
            on_poll()
        children = [c for mo in mo_ids for c in _children(http, mo)]
        still_open = Counter(c["state"] for c in children if c["state"] in OPEN_STATES)
        if not still_open:
            return children
        if time.monotonic() > deadline:
            raise AssertionError(f"children still open after {timeout} s: {dict(still_open)}")
        time.sleep(0.1)


def _attempts(http: httpx.Client, fo_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    def one(fo_id: str) -> tuple[str, list[dict[str, Any]]]:
        r = http.get(f"/v1/follower-orders/{fo_id}/attempts")
        assert r.status_code == 200, r.text
        return fo_id, r.json()["data"]

    with ThreadPoolExecutor(4) as pool:
        return dict(pool.map(one, fo_ids))


def _client_ports(pid: int, remote_port: int) -> set[int]:
    """Local ports of the TCP connections process ``pid`` has open to 127.0.0.1:remote_port.

    Read from /proc: the socket inodes among the process's descriptors, matched against
    /proc/net/tcp. Lets a test tell which worker process a request at the receiver came from.
    """
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return set()
    ports = set()
    for line in lines:
        f = line.split()
        local, remote, inode = f[1], f[2], f[9]
        if inode in inodes and remote == f"0100007F:{remote_port:04X}":
            ports.add(int(local.split(":")[1], 16))
    return ports


def _assert_clean_logs(procs: Processes, *names: str) -> None:
    for name in names:
        err = procs.stderr(name)
        assert "Traceback" not in err and "failed unexpectedly" not in err, (name, err[-3000:])


def _report(name: str, data: dict[str, Any]) -> None:
    print(f"\n[{name}] " + json.dumps(data, sort_keys=True))


# --------------------------------------------------------------------------- a. random faults


def test_random_faults_two_dispatchers(procs: Processes, tmp_path: Path) -> None:
    started = time.monotonic()
    timeout_s = 0.6
    env = _env(tmp_path,
               VANTA_WEBHOOK_TIMEOUT_SECONDS=str(timeout_s),
               VANTA_DISPATCHER_LEASE_SECONDS="30",
               # Every follower here shares one host:port. The default limit of 4 requests
               # per endpoint would make deliveries time out while queued for a slot (the
               # timeout covers the wait), which is the dispatcher's doing, not the
               # receiver's; 40 real followers would be 40 endpoints.
               VANTA_WEBHOOK_PER_ENDPOINT_LIMIT="32")
    http = _start_platform(procs, tmp_path, env)
    always_fail = ["dead0", "dead1", "dead2"]
    rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0.4", "--slow-rate", "0.2",
                          "--slow-ms", "50,200", "--hang-seconds", str(timeout_s + 0.6),
                          "--always-fail-keys", ",".join(always_fail))

    keys = [f"f{i:02d}" for i in range(37)] + always_fail
    followers = _register(http, rcv, keys)
    # Never dispatched: they must never reach the receiver.
    followers |= _register(http, rcv, ["killed"], {"kill_switch": True})
    followers |= _register(http, rcv, ["shadow"], {"mode": "shadow"})
    key_of = {fid: key for key, fid in followers.items()}

    dispatchers = [_start_dispatcher(procs, f"dispatch{i}", env) for i in range(2)]
    setup_s = time.monotonic() - started
    mo_ids = []
    for i, symbol in enumerate(["AAPL", "MSFT", "NVDA", "AMZN", "TSLA"]):
        r = http.post("/v1/manager-orders", json={"id": f"M-{i}", "vault_id": "V1",
                                                  "symbol": symbol, "side": "buy",
                                                  "qty": 10 + i, "ref_price": 100})
        assert r.status_code == 201, r.text
        mo_ids.append(r.json()["mo_id"])

    rcv_port = int(str(rcv.base_url).rstrip("/").rsplit(":", 1)[1])
    worker_ports: list[set[int]] = [set() for _ in dispatchers]

    def sample_connections() -> None:
        for ports, d in zip(worker_ports, dispatchers, strict=True):
            ports |= _client_ports(d.pid, rcv_port)

    children = _settle(http, mo_ids, timeout=55, on_poll=sample_connections)
    sample_connections()
    settled_after = time.monotonic() - started
    assert all(d.poll() is None for d in dispatchers), "a dispatcher died"

    by_state = Counter(c["state"] for c in children)
    assert len(children) == 5 * len(followers)
    assert by_state["skipped"] == 5 and by_state["shadow"] == 5, by_state
    sendable = [c for c in children if c["state"] not in ("skipped", "shadow")]
    assert len(sendable) == 5 * len(keys)
    # nothing lost, nothing stuck: each sendable child ended acknowledged or dead-lettered
    assert {c["state"] for c in sendable} <= {"ack", "dlq"}, by_state

    state = rcv.get("/_admin/state").json()
    ids, totals = state["ids"], state["totals"]
    assert totals["rejected"] == {}, totals  # every delivery verified, none misrouted
    assert totals["content_mismatch"] == 0, totals  # a redelivery never changed the order
    assert set(FAULTS) <= set(totals["modes"]), totals["modes"]  # every fault was exercised

    sendable_ids = {c["fo_id"] for c in sendable}
    never_sent = {c["fo_id"] for c in children} - sendable_ids
    assert not never_sent & set(ids), "a skipped or shadow child reached the receiver"
    assert set(ids) <= sendable_ids
    # the receiver is idempotent, so "applied twice" can only show up as a count above 1
    assert all(s["applied"] <= 1 for s in ids.values())

    attempts = _attempts(http, sorted(sendable_ids))
    dead = {followers[k] for k in always_fail}
    max_attempts = 1 + len(RETRY_SCHEDULE)
    dlq_ok_endpoint = 0
    for c in sendable:
        fo_id, seen = c["fo_id"], ids.get(c["fo_id"])
        rows = attempts[fo_id]
        numbers = [a["attempt_no"] for a in rows]
        assert numbers == list(range(1, len(rows) + 1)), (fo_id, numbers)
        assert 1 <= len(rows) <= max_attempts, (fo_id, numbers)
        assert c["dispatch_attempts"] == len(rows), (c, numbers)
        assert [a["outcome"] for a in rows[:-1]] == ["retry"] * (len(rows) - 1), rows
        assert rows[-1]["outcome"] == c["state"], (c, rows)
        if seen is not None:
            assert seen["key"] == key_of[c["follower_id"]]  # went to its own endpoint
            # never more requests on the wire than attempts counted, each with its own number
            assert seen["arrivals"] <= len(rows), (fo_id, seen, numbers)
            assert len(set(seen["attempt_nos"])) == len(seen["attempt_nos"]), seen
            assert set(seen["attempt_nos"]) <= set(numbers), (seen, numbers)
            assert seen["body"] is None or seen["body"]["follower_id"] == c["follower_id"]
        if c["state"] == "ack":
            assert 200 <= rows[-1]["status_code"] < 300, rows[-1]
            assert seen is not None and seen["applied"] == 1, (fo_id, seen)
            assert seen["ok_2xx"] >= 1
        else:  # dlq: only after every retry of the schedule was spent
            assert len(rows) == max_attempts, (fo_id, numbers)
            assert seen is None or seen["applied"] <= 1
            if c["follower_id"] not in dead:
                dlq_ok_endpoint += 1
        if c["follower_id"] in dead:
            assert c["state"] == "dlq", c
            assert seen is not None and seen["applied"] == 0, seen
            assert seen["modes"] == ["always_503"] * max_attempts, seen

    for mo in mo_ids:
        assert http.get(f"/v1/manager-orders/{mo}").json()["state"] == "completed"
    _assert_clean_logs(procs, "dispatch0", "dispatch1", "api", "receiver")

    # Both workers really delivered (requests seen on connections each of them owned).
    per_worker = [sum(n for p, n in state["peer_ports"].items() if int(p) in ports)
                  for ports in worker_ports]
    if Path("/proc/net/tcp").exists():
        assert all(n > 0 for n in per_worker), (per_worker, worker_ports)

    handled = Counter()
    for rows in attempts.values():
        handled[len(rows)] += 1
    _report("random_faults", {
        "seed": SEED, "children": len(sendable), "states": dict(by_state),
        "dlq_on_healthy_endpoints": dlq_ok_endpoint, "attempts_per_child": dict(handled),
        "receiver": {k: totals[k] for k in ("requests", "applied_effects", "ok_2xx",
                                            "duplicate_2xx")},
        "modes": totals["modes"], "requests_seen_per_worker": per_worker,
        "setup_s": round(setup_s, 1), "settled_s": round(settled_after, 1)})


# --------------------------------------------------------------------------- b. SIGKILL


def test_sigkill_mid_fan_out(procs: Processes, tmp_path: Path) -> None:
    started = time.monotonic()
    n_followers = 400
    # The lease is what a dead worker's rows wait for; each worker takes it from its own
    # settings, so the killed one must have the short lease too.
    env = _env(tmp_path, VANTA_DISPATCHER_LEASE_SECONDS="1", VANTA_WEBHOOK_TIMEOUT_SECONDS="0.3")
    http = _start_platform(procs, tmp_path, env)
    rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0", "--slow-rate", "1",
                          "--slow-ms", "20,50")
    followers = _register(http, rcv, [f"f{i:03d}" for i in range(n_followers)])
    key_of = {fid: key for key, fid in followers.items()}
    registered_after = time.monotonic() - started

    r = http.post("/v1/manager-orders", json={"id": "M-KILL", "vault_id": "V1",
                                              "symbol": "AAPL", "side": "buy", "qty": 5,
                                              "ref_price": 100})
    assert r.status_code == 201, r.text
    mo_id = r.json()["mo_id"]
    assert r.json()["children_total"] == n_followers

    first = _start_dispatcher(procs, "dispatch-killed", env)
    deadline = time.monotonic() + 30
    arrived = 0
    while arrived < n_followers // 3:
        assert first.poll() is None, procs.stderr("dispatch-killed")
        assert time.monotonic() < deadline, f"only {arrived} deliveries arrived"
        arrived = rcv.get("/_admin/state", params={"summary": 1}).json()["totals"]["arrivals"]
        time.sleep(0.01)
    os.kill(first.pid, signal.SIGKILL)
    assert first.wait(10) == -signal.SIGKILL

    # Nothing runs now: the database is exactly as the dead worker left it.
    at_kill = {c["fo_id"]: c for c in _children(http, mo_id)}
    states_at_kill = Counter(c["state"] for c in at_kill.values())
    in_flight = {fo for fo, c in at_kill.items() if c["state"] == "sent"}
    arrivals_at_kill = rcv.get("/_admin/state",
                               params={"summary": 1}).json()["totals"]["arrivals"]
    assert states_at_kill["ack"] < n_followers, "the kill came too late to test anything"
    assert states_at_kill["ack"] + len(in_flight) + states_at_kill["pending"] == n_followers, \
        states_at_kill

    second = _start_dispatcher(procs, "dispatch-after", env)
    children = _settle(http, [mo_id], timeout=40)
    assert second.poll() is None
    assert Counter(c["state"] for c in children) == {"ack": n_followers}
    assert http.get(f"/v1/manager-orders/{mo_id}").json()["state"] == "completed"

    state = rcv.get("/_admin/state").json()
    ids, totals = state["ids"], state["totals"]
    assert totals["rejected"] == {} and totals["content_mismatch"] == 0, totals
    fo_ids = {c["fo_id"] for c in children}
    assert set(ids) == fo_ids  # nothing else was applied
    assert all(s["applied"] == 1 for s in ids.values())  # each exactly once
    duplicates = {wid for wid, s in ids.items() if s["duplicate_2xx"]}
    redelivered = {wid for wid, s in ids.items() if s["arrivals"] > 1}
    # Only children whose attempt was in flight when the worker died may be sent again.
    assert redelivered <= in_flight, redelivered - in_flight
    assert duplicates <= redelivered

    attempts = _attempts(http, sorted(fo_ids))
    lost_attempt_rows = 0
    for c in children:
        rows, seen = attempts[c["fo_id"]], ids[c["fo_id"]]
        assert seen["key"] == key_of[c["follower_id"]]
        assert rows and rows[-1]["outcome"] == "ack" and rows[-1]["attempt_no"] == \
            c["dispatch_attempts"], (c, rows)
        assert all(r["outcome"] != "in_flight" for r in rows), rows
        assert seen["arrivals"] <= c["dispatch_attempts"]
        assert len(set(seen["attempt_nos"])) == len(seen["attempt_nos"]), seen
        numbers = [a["attempt_no"] for a in rows]
        if c["fo_id"] in in_flight:
            # the dead worker's attempt stays in the log, marked lost
            assert c["dispatch_attempts"] == 2 and numbers == [1, 2], (c, numbers)
            assert rows[0]["outcome"] == "lost", rows
            lost_attempt_rows += 1
        else:
            assert numbers == [1] and c["dispatch_attempts"] == 1, (c, numbers)
    _assert_clean_logs(procs, "dispatch-after", "api", "receiver")

    _report("sigkill", {
        "followers": n_followers, "register_s": round(registered_after, 1),
        "arrivals_at_kill": arrivals_at_kill, "states_at_kill": dict(states_at_kill),
        "in_flight_at_kill": len(in_flight), "redelivered_ids": len(redelivered),
        "duplicate_2xx": totals["duplicate_2xx"], "requests": totals["requests"],
        "attempt_rows_lost_with_the_worker": lost_attempt_rows,
        "total_s": round(time.monotonic() - started, 1)})
