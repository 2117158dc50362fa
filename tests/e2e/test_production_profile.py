"""The production profile as real processes: PostgreSQL, Redis, NATS JetStream, several APIs
and workers, and a verifying receiver, all on 127.0.0.1.

* ``test_two_apis_two_dispatchers_on_postgres_and_nats``: a fresh database on the machine's
  PostgreSQL, a private nats-server, ``vanta db upgrade``, two ``vanta serve --no-dispatcher``
  sharing Redis (idempotency keys, rate limits), one ``vanta worker relay`` and two
  ``vanta worker dispatch --bus nats``. Followers are registered and orders submitted through
  both APIs; one dispatcher gets SIGTERM in the middle of the second order (it must drain and
  exit 0). Every child ends ``ack``, each webhook-id applied exactly once, and a POST retried
  with the same Idempotency-Key against the other API is replayed, not run again.
* ``test_postgres_restart_mid_fan_out``: a private PostgreSQL cluster (``initdb``/``pg_ctl``
  run as the ``postgres`` OS user), one API, a relay and a dispatcher over a private
  nats-server; the cluster is restarted (``pg_ctl restart -m fast``) while a 200-follower
  fan-out is being delivered. Once it is back every child ends ``ack`` and every webhook-id
  was applied exactly once. No process is restarted: each must survive the outage.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.conftest import require_service
from tests.e2e.test_delivery_faults import (
    VANTA,
    Processes,
    _env,
    _report,
    _run,
    _start_receiver,
    _wait_for_file,
)
from tests.http_helpers import add_idempotency_key_sync
from tests.integration.test_relay_consumer import (
    PrivateNats,
    _free_port,
    private_nats,  # noqa: F401  (fixture)
)
from tests.pg import temp_database

pytestmark = pytest.mark.e2e

MASTER_KEY = Fernet.generate_key().decode()  # shared by every process of a run
REDIS_URL = os.environ.get("VANTA_TEST_REDIS_URL", "redis://127.0.0.1:6379/14")
OPEN_STATES = ("pending", "sent", "retry")
TENANT, VAULT = "tnt_prod", "V1"


# --------------------------------------------------------------------------- helpers


def _prod_env(tmp_path: Path, db_url: str, nats_url: str, **extra: str) -> dict[str, str]:
    return _env(tmp_path, VANTA_DATABASE_URL=db_url, VANTA_NATS_URL=nats_url,
                VANTA_MASTER_KEY=MASTER_KEY,  # the production profile refuses to start without
                # every follower shares the receiver's host:port (see test_delivery_faults)
                VANTA_WEBHOOK_PER_ENDPOINT_LIMIT="32", VANTA_WEBHOOK_TIMEOUT_SECONDS="2",
                VANTA_DISPATCHER_LEASE_SECONDS="6", **extra)


def _setup(env: dict[str, str]) -> str:
    """Migrations, tenant, vault; returns a bearer token."""
    _run([*VANTA, "db", "upgrade"], env)
    _run([*VANTA, "tenant-create", TENANT], env)
    _run([*VANTA, "vault-create", VAULT, "--tenant", TENANT], env)
    return _run([*VANTA, "token", "--tenant", TENANT], env).strip()


def _start_api(procs: Processes, tmp_path: Path, name: str, env: dict[str, str],
               token: str) -> httpx.Client:
    port_file = tmp_path / f"{name}.port"
    proc = procs.start(name, [*VANTA, "serve", "--no-dispatcher", "--port", "0",
                              "--port-file", str(port_file)], env)
    port = _wait_for_file(port_file, proc, timeout=60)
    return httpx.Client(base_url=f"http://127.0.0.1:{port}",
                        headers={"Authorization": f"Bearer {token}"}, timeout=30,
                        event_hooks={"request": [add_idempotency_key_sync]})


def _start_relay(procs: Processes, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return procs.start("relay", [*VANTA, "worker", "relay", "--poll-seconds", "0.05",
                                 "--lease-seconds", "10"], env)


def _start_consumer(procs: Processes, name: str, env: dict[str, str],
                    concurrency: int) -> subprocess.Popen[bytes]:
    return procs.start(name, [*VANTA, "worker", "dispatch", "--bus", "nats",
                              "--concurrency", str(concurrency)], env)


def _register(apis: list[httpx.Client], rcv: httpx.Client, n: int) -> dict[str, str]:
    """n followers, registered alternately through each API; returns key -> follower_id."""
    base = str(rcv.base_url).rstrip("/")

    def one(i: int) -> tuple[str, str]:
        key = f"f{i:03d}"
        r = apis[i % len(apis)].post(f"/v1/vaults/{VAULT}/followers",
                                     json={"scale": "1", "webhook": {"url": f"{base}/hooks/{key}"}})
        assert r.status_code == 201, r.text
        body = r.json()
        assert rcv.put(f"/_admin/secrets/{key}",
                       content=body["webhook_secret"]).status_code == 200
        return key, body["follower_id"]

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, range(n)))


def _children(http: httpx.Client, mo_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/v1/manager-orders/{mo_id}")
    assert r.status_code == 200, r.text
    return r.json()["children"]


def _settle(http: httpx.Client, mo_ids: list[str], timeout: float,
            alive: list[subprocess.Popen[bytes]], procs: Processes
            ) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        for p in alive:
            if p.poll() is not None:
                name = next(n for n, q in procs.procs if q is p)
                raise AssertionError(f"{name} exited {p.returncode}: "
                                     f"{procs.stderr(name)[-3000:]}")
        try:
            children = [c for mo in mo_ids for c in _children(http, mo)]
        except (httpx.HTTPError, AssertionError):
            children = None  # the API may answer 5xx while the database is away
        if children is not None:
            still_open = Counter(c["state"] for c in children if c["state"] in OPEN_STATES)
            if not still_open:
                return children
        if time.monotonic() > deadline:
            raise AssertionError(f"children still open after {timeout} s: "
                                 f"{dict(still_open) if children else 'API not answering'}")
        time.sleep(0.1)


def _arrivals(rcv: httpx.Client) -> int:
    return int(rcv.get("/_admin/state", params={"summary": 1}).json()["totals"]["arrivals"])


def _wait_arrivals(rcv: httpx.Client, at_least: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (n := _arrivals(rcv)) < at_least:
        assert time.monotonic() < deadline, f"only {n} deliveries arrived"
        time.sleep(0.01)
    return n


def _order(http: httpx.Client, symbol: str, qty: int,
           key: str | None = None) -> httpx.Response:
    # no "id": only the Idempotency-Key protects against a double submit
    return http.post("/v1/manager-orders",
                     json={"vault_id": VAULT, "symbol": symbol, "side": "buy", "qty": qty,
                           "ref_price": 100},
                     headers={"Idempotency-Key": key} if key else None)


def _assert_exactly_once(rcv: httpx.Client, children: list[dict[str, Any]],
                         key_of: dict[str, str]) -> dict[str, Any]:
    assert Counter(c["state"] for c in children) == {"ack": len(children)}
    state = rcv.get("/_admin/state").json()
    ids, totals = state["ids"], state["totals"]
    assert totals["rejected"] == {} and totals["content_mismatch"] == 0, totals
    fo_ids = {c["fo_id"] for c in children}
    assert len(fo_ids) == len(children)
    assert set(ids) == fo_ids  # nothing else was applied
    assert all(s["applied"] == 1 for s in ids.values())  # each exactly once
    for c in children:
        assert ids[c["fo_id"]]["key"] == key_of[c["follower_id"]]  # to its own endpoint
    return totals


# --------------------------------------------------------------------------- 1. two APIs


def test_two_apis_two_dispatchers_on_postgres_and_nats(
    procs: Processes, tmp_path: Path, postgres_url: str,
    private_nats: PrivateNats,  # noqa: F811
) -> None:
    started = time.monotonic()
    redis_url = require_service("Redis", REDIS_URL)
    n = 100
    with temp_database(postgres_url) as db_url:
        env = _prod_env(tmp_path, db_url, private_nats.url, VANTA_REDIS_URL=redis_url)
        token = _setup(env)
        with ThreadPoolExecutor(2) as pool:
            apis = list(pool.map(lambda i: _start_api(procs, tmp_path, f"api{i}", env, token),
                                 range(2)))
        rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0", "--slow-rate", "1",
                              "--slow-ms", "100,200")
        followers = _register(apis, rcv, n)
        key_of = {fid: key for key, fid in followers.items()}
        relay = _start_relay(procs, env)
        consumers = [_start_consumer(procs, f"dispatch{i}", env, 6) for i in range(2)]
        setup_s = time.monotonic() - started

        # order 1 through API 0, then the same POST (same key) through API 1: a replay
        key = uuid.uuid4().hex
        r1 = _order(apis[0], "AAPL", 10, key)
        assert r1.status_code == 201, r1.text
        assert r1.headers.get("idempotency-replayed") != "true"
        mo_ids = [r1.json()["mo_id"]]
        assert r1.json()["children_total"] == n
        again = _order(apis[1], "AAPL", 10, key)
        assert again.status_code == 201, again.text
        assert again.headers.get("idempotency-replayed") == "true", dict(again.headers)
        assert again.json()["mo_id"] == mo_ids[0]

        # order 2 through API 1; SIGTERM one dispatcher in the middle of it
        before = _arrivals(rcv)
        r2 = _order(apis[1], "MSFT", 11)
        assert r2.status_code == 201, r2.text
        mo_ids.append(r2.json()["mo_id"])
        _wait_arrivals(rcv, max(before, n) + n // 3, timeout=40)
        at_term = {c["fo_id"]: c["state"] for c in _children(apis[0], mo_ids[1])}
        consumers[0].send_signal(signal.SIGTERM)
        code = consumers[0].wait(20)
        assert code == 0, procs.stderr("dispatch0")[-3000:]
        states_at_term = Counter(at_term.values())
        assert states_at_term["ack"] < n, "the SIGTERM came too late to test anything"

        # order 3 through API 0, delivered by the remaining dispatcher
        r3 = _order(apis[0], "NVDA", 12)
        assert r3.status_code == 201, r3.text
        mo_ids.append(r3.json()["mo_id"])

        children = _settle(apis[1], mo_ids, timeout=45, alive=[relay, consumers[1]],
                           procs=procs)
        assert len(children) == 3 * n
        totals = _assert_exactly_once(rcv, children, key_of)
        for i, mo in enumerate(mo_ids):
            assert apis[i % 2].get(f"/v1/manager-orders/{mo}").json()["state"] == "completed"
        # the replayed POST created nothing: three orders, no other
        listed = apis[1].get("/v1/manager-orders", params={"limit": 50})
        assert listed.status_code == 200, listed.text
        assert {o["mo_id"] for o in listed.json()["data"]} == set(mo_ids)
        for name in ("api0", "api1", "relay", "dispatch0", "dispatch1", "receiver"):
            err = procs.stderr(name)
            assert "Traceback" not in err, (name, err[-3000:])
        procs.stop_all()
        per_worker = [procs.stderr(f"dispatch{i}").count('"delivery batch"') for i in range(2)]
        assert all(k > 0 for k in per_worker), per_worker  # both dispatchers delivered
        _report("two_apis", {
            "followers": n, "states_at_sigterm": dict(states_at_term),
            "attempts_per_dispatcher": per_worker,
            "requests": totals["requests"], "duplicate_2xx": totals["duplicate_2xx"],
            "setup_s": round(setup_s, 1), "total_s": round(time.monotonic() - started, 1)})


# --------------------------------------------------------------------------- 2. PG restart


class PrivatePostgres:
    """A throwaway cluster run by the ``postgres`` OS user (initdb refuses root)."""

    def __init__(self) -> None:
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
        try:
            import pwd
            pwd.getpwnam("postgres")
            has_user = True
        except (KeyError, ImportError):
            has_user = False
        if not bins or not has_user or shutil.which("runuser") is None:
            msg = "no /usr/lib/postgresql/*/bin/pg_ctl, postgres OS user or runuser"
            if os.environ.get("CI", "").lower() == "true":
                pytest.fail(f"{msg} (CI=true: services are required)")
            pytest.skip(msg)
        self.bin = Path(bins[-1]).parent
        self.port = _free_port()
        # not under pytest's tmp dir: the postgres user cannot traverse root's 0700 dirs
        self.root = Path(tempfile.mkdtemp(prefix="vanta-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True,
                              text=True, timeout=timeout, cwd=self.root)
        assert done.returncode == 0, (args, done.stdout[-2000:], done.stderr[-2000:])

    def start(self) -> None:
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "--no-sync")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=200")
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-o", opts, "-w", "start")

    def restart(self) -> None:
        self._as_postgres(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                          "-m", "fast", "-w", "restart")

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(self.bin / "pg_ctl"), "-D",
                            str(self.data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60, cwd=self.root)
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    try:
        pg.start()
        yield pg
    finally:
        pg.stop()


def test_postgres_restart_mid_fan_out(
    procs: Processes, tmp_path: Path, private_pg: PrivatePostgres,
    private_nats: PrivateNats,  # noqa: F811
) -> None:
    """No process is restarted here: API, relay and dispatcher must each ride out the
    database restart on their own."""
    started = time.monotonic()
    n = 200
    env = _prod_env(tmp_path, private_pg.url, private_nats.url)
    token = _setup(env)
    api = _start_api(procs, tmp_path, "api", env, token)
    rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0", "--slow-rate", "1",
                          "--slow-ms", "80,160")
    followers = _register([api], rcv, n)
    key_of = {fid: key for key, fid in followers.items()}
    relay = _start_relay(procs, env)
    concurrency = 8
    consumer = _start_consumer(procs, "dispatch", env, concurrency)
    setup_s = time.monotonic() - started

    r = _order(api, "AAPL", 7)
    assert r.status_code == 201, r.text
    mo_id = r.json()["mo_id"]
    assert r.json()["children_total"] == n
    at_restart = _wait_arrivals(rcv, n // 4, timeout=40)
    t0 = time.monotonic()
    private_pg.restart()
    restart_s = time.monotonic() - t0
    arrivals_after_restart = _arrivals(rcv)
    assert arrivals_after_restart < n, "the fan-out ended before the restart"

    children = _settle(api, [mo_id], timeout=50, alive=[relay, consumer, dict(procs.procs)["api"]],
                       procs=procs)
    assert len(children) == n
    totals = _assert_exactly_once(rcv, children, key_of)
    # While the database is away no lease can be taken, so only children sent but not yet
    # recorded may be sent a second time: the consumer's two overlapping batches of
    # `concurrency` children each (Consumer.max_batches = 2, batch = concurrency).
    assert totals["duplicate_2xx"] <= 2 * concurrency, totals
    assert api.get(f"/v1/manager-orders/{mo_id}").json()["state"] == "completed"
    assert api.get("/readyz").status_code == 200
    for name, proc in procs.procs:
        assert proc.poll() is None, (name, procs.stderr(name)[-3000:])
    procs.stop_all()  # before the nats-server fixture goes away
    stderr_tracebacks = {name: procs.stderr(name).count("Traceback")
                         for name in ("api", "relay", "dispatch")}
    failed_deliveries = procs.stderr("dispatch").count("delivery failed")
    _report("pg_restart", {
        "followers": n, "arrivals_at_restart": at_restart,
        "arrivals_after_restart": arrivals_after_restart, "restart_s": round(restart_s, 2),
        "requests": totals["requests"], "duplicate_2xx": totals["duplicate_2xx"],
        "tracebacks_in_stderr": stderr_tracebacks, "failed_deliveries": failed_deliveries,
        "setup_s": round(setup_s, 1), "total_s": round(time.monotonic() - started, 1)})


# --------------------------------------------------------------------------- 3. SIGKILL


def test_a_sigkilled_dispatch_worker_s_rows_resume_within_10_s(
    procs: Processes, tmp_path: Path, postgres_url: str,
    private_nats: PrivateNats,  # noqa: F811
) -> None:
    """A dispatch worker is killed with SIGKILL mid fan-out and another takes over. Its rows
    (those it was sending: short outbox leases it no longer renews; those still in its
    unacked messages: a short ack wait it no longer extends) all reach the receiver within
    10 s of the kill, and no webhook-id is applied twice."""
    n = 150
    with temp_database(postgres_url) as db_url:
        env = _prod_env(tmp_path, db_url, private_nats.url)
        env["VANTA_DISPATCHER_LEASE_SECONDS"] = "8"  # the default
        token = _setup(env)
        api = _start_api(procs, tmp_path, "api", env, token)
        rcv = _start_receiver(procs, tmp_path, env, "--fail-rate", "0", "--slow-rate", "1",
                              "--slow-ms", "100,200")
        followers = _register([api], rcv, n)
        key_of = {fid: key for key, fid in followers.items()}
        relay = _start_relay(procs, env)
        # the victim alone pulls the order's messages, so it holds work when it dies; the
        # survivor starts just before the kill (its start-up is inside the measured time)
        victim = _start_consumer(procs, "dispatch-killed", env, 8)

        r = _order(api, "AAPL", 7)
        assert r.status_code == 201, r.text
        mo_id = r.json()["mo_id"]
        _wait_arrivals(rcv, n // 4, timeout=60)
        survivor = _start_consumer(procs, "dispatch", env, 8)
        os.kill(victim.pid, signal.SIGKILL)
        killed_at = time.time()
        assert victim.wait(10) == -signal.SIGKILL
        at_kill = _arrivals(rcv)
        assert at_kill < n, "the fan-out ended before the kill"

        children = _settle(api, [mo_id], timeout=60, alive=[relay, survivor], procs=procs)
        totals = _assert_exactly_once(rcv, children, key_of)
        log = [json.loads(line) for line in
               (tmp_path / "receiver.jsonl").read_text().splitlines() if line.strip()]
        last = max(rec["t"] for rec in log if "arrival" in rec)
        resent = sorted({rec["wid"] for rec in log if rec.get("arrival", 1) > 1})
        procs.stop_all()
        _report("sigkill_dispatch", {
            "followers": n, "arrivals_at_kill": at_kill, "resent": len(resent),
            "last_arrival_after_kill_s": round(last - killed_at, 2),
            "requests": totals["requests"], "duplicate_2xx": totals["duplicate_2xx"]})
        # the victim held the rest of the fan-out: what it had sent unrecorded comes again
        # once its leases lapse, what it had not started once its messages are redelivered
        assert last - killed_at <= 10.0, (last - killed_at, resent)
