"""Fan-out: one vault, N webhook followers, manager orders through the real API.

    .venv/bin/python bench/fanout.py                 # N = 100, 1,000, 10,000; 20 orders each
    .venv/bin/python bench/fanout.py --n 1000        # one N (repeat --n for several)
    .venv/bin/python bench/fanout.py --smoke         # N = 20, 3 orders, nothing asserted on time

Processes, all on 127.0.0.1 and all stopped at the end (also on errors and SIGTERM):
* ``bench/fanout_receiver.py``: one aiohttp receiver; follower ``k`` posts to ``/hooks/k``.
  It verifies both signatures of every request with ``vanta.receiving.verify`` and records the
  arrival time of each ``webhook-id``;
* embedded profile: ``vanta serve`` with its in-process dispatcher over SQLite;
* production profile, when ``vanta worker`` exists and PostgreSQL (127.0.0.1:5432), Redis and
  NATS (127.0.0.1:4222) answer: ``vanta serve --no-dispatcher``, ``vanta worker relay`` and
  ``vanta worker dispatch --bus nats`` (``--dispatch-workers``, repeat it to run the
  profile once per worker count, side by side) over a fresh PostgreSQL
  database (created, then dropped), an empty Redis db (the run's keys deleted afterwards) and
  a JetStream stream of the run's own (deleted afterwards; if another stream on 4222 already
  takes ``mirror.>``, a private ``nats-server`` on a free 127.0.0.1 port is used and the
  result says so); without the workers or a service the profile is reported as not run,
  with the reason;
* ceiling: a bare aiohttp client posting N bodies of the same shape (signed beforehand with
  N follower secrets of its own) to the same receiver at the same concurrency (in this
  process);
* baseline: Celery with a Redis broker (``redis://127.0.0.1:6379/13``, or another empty db if
  that one holds keys; its keys deleted afterwards), one ``requests.post`` task per child,
  signing in the task (``celery_baseline.py``), one worker process (``--pool threads`` by
  default, ``--celery-pool prefork``) at the same concurrency.

N followers are seeded straight through the application layer's adapters (secrets into the
encrypted secret store, follower rows and their audit events in one transaction); the
receiver loads their ``whsec_`` secrets from a JSON file the benchmark writes. Each Vanta
order is posted with an ``Idempotency-Key`` after the previous fan-out completed; latency runs
from the moment the client sends the POST to each child's arrival at the receiver (the 201
answers with counts per state; its own time is printed apart). Ceiling
and Celery rounds run from the moment sending (or enqueuing) starts. One warm-up order or
round per path is not counted. Prints a table and writes ``bench/results/fanout.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import math
import os
import platform
import secrets as pysecrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.fernet import Fernet

from vanta.application.clock import utcnow
from vanta.application.payloads import dispatch_body
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import ChildOrderRecord, ManagerOrderRecord
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault, register_webhook_followers
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.domain.followers import FollowerMode, ScaleMode
from vanta.domain.orders import ChildOrderState, ManagerOrderState, Side, TimeInForce
from vanta.domain.webhook_signing import (
    new_webhook_secret,
    signature_headers,
    standard_secret_string,
)

HERE = Path(__file__).resolve().parent
VANTA = [sys.executable, "-m", "vanta.entrypoints.cli.main"]
TENANT = f"tnt_bench_{pysecrets.token_hex(3)}"  # per run: its Redis keys are its own
VAULT = "V_FANOUT"
OPEN_OR_SENT = {"pending", "sent", "retry", "ack", "confirmed"}
UNLIMITED = "100000000"
MASTER_KEY = Fernet.generate_key().decode()  # production profile: an external key


# -- processes ---------------------------------------------------------------------------

class Procs:
    """Every process the run starts, each in its own session; stopped by its own id."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: list[str], env: dict[str, str],
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        log = (self.logdir / f"{name}.log").open("ab")
        p = subprocess.Popen(args, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        log.close()
        self.procs.append((name, p))
        return p

    def stop(self, p: subprocess.Popen[bytes], timeout: float = 20) -> None:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, signal.SIGKILL)
                p.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(p.pid, signal.SIGKILL)  # stragglers of the group (prefork children)
        self.procs = [(n, q) for n, q in self.procs if q is not p]

    def stop_all(self) -> None:
        for _, p in reversed(list(self.procs)):
            self.stop(p)

    def tail(self, name: str, lines: int = 30) -> str:
        path = self.logdir / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_port_file(path: Path, proc: subprocess.Popen[bytes], procs: Procs, name: str,
                   timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return int(path.read_text())
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{procs.tail(name)}")
        time.sleep(0.05)
    raise TimeoutError(f"{name}: {path} did not appear")


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- statistics --------------------------------------------------------------------------

def pct(xs: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    xs = sorted(xs)
    return xs[max(0, min(len(xs) - 1, math.ceil(p / 100 * len(xs)) - 1))]


@dataclass
class Round:
    """One manager order (or one baseline round): its start and every child's arrival."""

    start: float  # Vanta: POST sent; baselines: first send / enqueue
    arrivals: list[float]
    submitted: float | None = None  # Vanta: request sent (the same as ``start``)
    accepted: float | None = None  # Vanta: its 201 received
    enqueue_s: float | None = None  # Celery: time spent queuing the N tasks

    @property
    def span(self) -> float:
        return max(self.arrivals) - self.start


@dataclass
class PathResult:
    name: str
    rounds: list[Round] = field(default_factory=list)
    note: str = ""
    # CPU seconds (user + system) the path's own processes spent over every round (the
    # warm-up included), and the deliveries of those rounds: CPU per delivery says what a
    # delivery costs on a shared machine, where wall-clock rates move with the load.
    cpu_s: float | None = None
    cpu_deliveries: int = 0

    def summary(self) -> dict[str, Any]:
        lat = [a - r.start for r in self.rounds for a in r.arrivals]
        spans = [r.span for r in self.rounds]
        total = sum(len(r.arrivals) for r in self.rounds)
        out: dict[str, Any] = {
            "rounds": len(self.rounds), "deliveries": total,
            "e2e_p50_s": round(pct(spans, 50), 4), "e2e_p95_s": round(pct(spans, 95), 4),
            "child_p50_ms": round(pct(lat, 50) * 1000, 1),
            "child_p95_ms": round(pct(lat, 95) * 1000, 1),
            "child_p99_ms": round(pct(lat, 99) * 1000, 1),
            "deliveries_per_s": round(total / sum(spans), 1),
            "round_rate_p50": round(pct([len(r.arrivals) / r.span for r in self.rounds], 50), 1),
        }
        if any(r.submitted is not None for r in self.rounds):
            acc = [r.accepted - r.submitted for r in self.rounds
                   if r.submitted is not None and r.accepted is not None]
            sub = [max(r.arrivals) - r.submitted for r in self.rounds if r.submitted]
            out["submit_to_201_p50_s"] = round(pct(acc, 50), 4)
            out["submit_to_last_p50_s"] = round(pct(sub, 50), 4)
            out["submit_to_last_p95_s"] = round(pct(sub, 95), 4)
            out["children_before_201"] = sum(1 for r in self.rounds for a in r.arrivals
                                             if r.accepted is not None and a < r.accepted)
        if any(r.enqueue_s is not None for r in self.rounds):
            out["enqueue_p50_s"] = round(pct([r.enqueue_s or 0 for r in self.rounds], 50), 4)
        if self.cpu_s is not None and self.cpu_deliveries:
            out["cpu_s"] = round(self.cpu_s, 3)
            out["cpu_us_per_delivery"] = round(self.cpu_s / self.cpu_deliveries * 1e6, 1)
        if self.note:
            out["note"] = self.note
        return out


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU of ``pids`` and their reaped children, from /proc (0 if gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
    return total / tick


# -- receiver ----------------------------------------------------------------------------

class ReceiverClient:
    def __init__(self, base: str, http: aiohttp.ClientSession) -> None:
        self.base = base
        self.http = http

    async def get(self, path: str) -> dict[str, Any]:
        async with self.http.get(self.base + path) as r:
            r.raise_for_status()
            return await r.json()  # type: ignore[no-any-return]

    async def load(self, path: Path) -> None:
        async with self.http.post(self.base + "/_admin/load", json={"path": str(path)}) as r:
            r.raise_for_status()

    async def wait_group(self, group: str, expected: int, timeout: float) -> list[float]:
        deadline = time.monotonic() + timeout
        while True:
            g = await self.get(f"/_group/{group}")
            if g["count"] >= expected:
                break
            if time.monotonic() > deadline:
                st = await self.get("/_stats")
                raise TimeoutError(f"{group}: {g['count']}/{expected} children arrived in "
                                   f"{timeout:.0f} s; receiver {st}")
            await asyncio.sleep(0.02)
        arr = (await self.get(f"/_arrivals/{group}"))["arrivals"]
        return list(arr.values())


# -- seeding -----------------------------------------------------------------------------

def profile_settings(data_dir: Path, database_url: str | None) -> Settings:
    # PostgreSQL is the production profile: its master key comes from outside the data folder
    key = MASTER_KEY if database_url else None
    return Settings(data_dir=data_dir, database_url=database_url, master_key=key)


async def seed(settings: Settings, n: int, prefix: str, hooks: str) -> tuple[dict[str, str], str]:
    """N webhook followers in one transaction; returns ({key: whsec}, a bearer token)."""
    c = build(settings)
    try:
        await c.migrate()
        await create_tenant(c.uow(), tenant_id=TENANT, name="Fan-out bench")
        await grant_plan(c.uow(), tenant_id=TENANT, plan_id="institutional", actor="bench")
        await create_vault(c.uow(), tenant_id=TENANT, vault_id=VAULT, label="Fan-out")
        secrets = await register_webhook_followers(
            c.uow, c.secrets, tenant_id=TENANT, vault_id=VAULT,
            keys=[f"{prefix}{i:05d}" for i in range(n)], hooks=hooks, actor="bench")
        token = c.issuer.issue("bench", TENANT, ALL_SCOPES, roles=["owner"],
                               ttl_seconds=6 * 3600)
        return secrets, token
    finally:
        await c.close()


# -- the Vanta paths ---------------------------------------------------------------------

Drive = Callable[[str, str], Awaitable[list[Round]]]


async def vanta_orders(api: str, token: str, rcv: ReceiverClient, n: int, orders: int,
                       tag: str, timeout: float) -> list[Round]:
    rounds: list[Round] = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        for i in range(orders + 1):  # the first is a warm-up
            order = {"id": f"{tag}-{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                     "qty": 10, "ref_price": 190}
            headers = {"Authorization": f"Bearer {token}",
                       "Idempotency-Key": uuid.uuid4().hex}
            submitted = time.time()
            async with http.post(f"{api}/v1/manager-orders", json=order, headers=headers) as r:
                body = await r.read()
                accepted = time.time()
                if r.status != 201:
                    raise RuntimeError(f"order {order['id']}: HTTP {r.status} {body[:500]!r}")
            data = json.loads(body)
            counts = data["counts"]  # the 201 counts the children per state
            sent = sum(v for k, v in counts.items() if k in OPEN_OR_SENT)
            if sent != n:
                raise RuntimeError(f"{n - sent} children were not sent: {counts}")
            arrivals = await rcv.wait_group(data["mo_id"], n, timeout)
            if i:
                rounds.append(Round(submitted, arrivals, submitted=submitted,
                                    accepted=accepted))
    return rounds


def base_env(data_dir: Path, concurrency: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTA_")}
    env.update({
        "VANTA_DATA_DIR": str(data_dir),
        "VANTA_RATE_LIMIT_PER_MINUTE": UNLIMITED, "VANTA_RATE_LIMIT_BURST": UNLIMITED,
        "VANTA_WEBHOOK_ALLOWLIST": '["127.0.0.1/32"]',
        "VANTA_DISPATCHER_CONCURRENCY": str(concurrency),
        # Every follower is a path on one receiver port, i.e. one endpoint. Its share of a
        # batch (twice the concurrency) is the whole batch; requests in flight stay capped at
        # the concurrency by the dispatcher, as the ceiling's and Celery's are.
        "VANTA_WEBHOOK_PER_ENDPOINT_LIMIT": str(2 * concurrency),
        "VANTA_DISPATCHER_POLL_SECONDS": "0.05",
    })
    return env


async def run_embedded(args: argparse.Namespace, n: int, procs: Procs, tmp: Path,
                       rcv: ReceiverClient, hooks: str) -> PathResult:
    data = tmp / f"embedded-{n}"
    t0 = time.perf_counter()
    keys, token = await seed(profile_settings(data, None), n, "e", hooks)
    seed_s = time.perf_counter() - t0
    sfile = tmp / f"secrets-embedded-{n}.json"
    sfile.write_text(json.dumps(keys))
    await rcv.load(sfile)
    env = base_env(data, args.concurrency)
    pf = tmp / f"api-embedded-{n}.port"
    p = procs.start(f"serve-embedded-{n}", [*VANTA, "serve", "--port", "0", "--port-file",
                                            str(pf)], env)
    try:
        port = wait_port_file(pf, p, procs, f"serve-embedded-{n}")
        cpu0 = cpu_seconds([p.pid])
        rounds = await vanta_orders(f"http://127.0.0.1:{port}", token, rcv, n, args.orders,
                                    f"E{n}", args.order_timeout(n))
        cpu = cpu_seconds([p.pid]) - cpu0
    finally:
        procs.stop(p)
    return PathResult("vanta embedded (SQLite, in-process dispatcher)", rounds,
                      note=f"seeded {n} followers in {seed_s:.1f} s", cpu_s=cpu,
                      cpu_deliveries=n * (args.orders + 1))


def production_check(args: argparse.Namespace) -> str | None:
    """None if the production profile can run, else why not."""
    r = subprocess.run([*VANTA, "worker", "--help"], capture_output=True, text=True)
    if r.returncode != 0:
        return "`vanta worker` does not exist yet (vanta worker --help: exit " \
               f"{r.returncode})"
    for sub, needle in (("relay", "--stream"), ("dispatch", "--bus")):
        r = subprocess.run([*VANTA, "worker", sub, "--help"], capture_output=True, text=True)
        if r.returncode != 0 or needle not in r.stdout:
            return f"`vanta worker {sub}` is missing or has no {needle} option"
    for name, port in (("PostgreSQL", 5432), ("Redis", 6379), ("NATS", 4222)):
        if not port_open("127.0.0.1", port):
            return f"{name} is not reachable at 127.0.0.1:{port}"
    return None


async def _pg(admin_url: str, sql: str) -> None:
    import asyncpg
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _nats_streams(url: str) -> list[tuple[str, list[str]]]:
    import nats
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        return [(s.config.name, list(s.config.subjects or []))
                for s in await nc.jetstream().streams_info()]
    finally:
        await nc.close()


async def _nats_delete_stream(url: str, stream: str) -> None:
    import nats
    nc = await nats.connect(url, connect_timeout=2, max_reconnect_attempts=0)
    try:
        with contextlib.suppress(Exception):
            await nc.jetstream().delete_stream(stream)
    finally:
        await nc.close()


def _redis(url: str) -> Any:
    import redis
    return redis.Redis.from_url(url)


def pick_redis_db(preferred: int | None, avoid: set[int]) -> int:
    """An empty Redis db (the preferred one if it is empty): other people's keys stay put."""
    candidates = ([preferred] if preferred is not None else []) + \
        [d for d in range(15, 0, -1) if d not in avoid and d != preferred]
    for d in candidates:
        r = _redis(f"redis://127.0.0.1:6379/{d}")
        try:
            if r.dbsize() == 0:
                return d
        finally:
            r.close()
    raise RuntimeError("no empty Redis db on 127.0.0.1:6379 for the production profile")


def delete_new_keys(url: str, before: set[bytes], pattern: str) -> int:
    """Delete keys matching ``pattern`` that were not there before the run."""
    r = _redis(url)
    try:
        mine = [k for k in r.scan_iter(match=pattern, count=1000) if k not in before]
        for i in range(0, len(mine), 500):
            r.delete(*mine[i:i + 500])
        return len(mine)
    finally:
        r.close()


async def run_production(args: argparse.Namespace, n: int, procs: Procs, tmp: Path,
                         rcv: ReceiverClient, hooks: str, cleanup: list[Any],
                         dispatch_workers: int, drive: Drive | None = None,
                         extra_env: dict[str, str] | None = None) -> PathResult:
    """PostgreSQL database, Redis keys and JetStream stream of the run's own, removed after.
    ``drive(api_url, token)``: what runs against the profile instead of ``vanta_orders``
    (``burst.py``, ``faults.py``); ``extra_env``: settings of the API and workers."""
    admin = args.pg_admin_url
    db = f"vanta_bench_{pysecrets.token_hex(4)}"
    pg_url = f"postgresql+asyncpg://{admin.split('://', 1)[1].rsplit('/', 1)[0]}/{db}"
    redis_db = pick_redis_db(args.vanta_redis_db, set())
    redis_url = f"redis://127.0.0.1:6379/{redis_db}"
    nats_url = args.nats_url
    stream = f"VANTA_BENCH_{pysecrets.token_hex(4).upper()}"
    note = f"Redis db {redis_db}. "
    undo: list[Any] = []  # run here when the profile ends; `cleanup` again at exit (idempotent)

    def later(fn: Any) -> None:
        undo.append(fn)
        cleanup.append(fn)

    started: list[subprocess.Popen[bytes]] = []
    try:
        await _pg(admin, f'CREATE DATABASE "{db}"')
        later(lambda: asyncio.run(_pg(admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')))
        later(lambda: delete_new_keys(redis_url, set(), "vanta:*"))  # the db was empty
        taken = [name for name, subjects in await _nats_streams(nats_url)
                 if any(x in ("mirror.>", "mirror.dispatch", ">") for x in subjects)]
        if taken:
            # another stream already takes mirror.> there: use a NATS server of our own
            port = free_port()
            p = procs.start(f"nats-server-{n}", ["nats-server", "-a", "127.0.0.1", "-p",
                                                 str(port), "-js", "-sd",
                                                 str(tmp / f"nats-store-{n}")],
                            dict(os.environ))
            started.append(p)
            nats_url = f"nats://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while not port_open("127.0.0.1", port):
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"private nats-server did not start:\n"
                                       f"{procs.tail(f'nats-server-{n}')}")
                time.sleep(0.05)
            note += (f"Stream {taken[0]} on {args.nats_url} already takes mirror.>: ran on a "
                     f"private nats-server at {nats_url}. ")
        else:
            url = nats_url
            later(lambda: asyncio.run(_nats_delete_stream(url, stream)))
        data = tmp / f"production-{n}-{dispatch_workers}"
        t0 = time.perf_counter()
        keys, token = await seed(profile_settings(data, pg_url), n, "p", hooks)
        seed_s = time.perf_counter() - t0
        sfile = tmp / f"secrets-production-{n}-{dispatch_workers}.json"
        sfile.write_text(json.dumps(keys))
        await rcv.load(sfile)
        env = {**base_env(data, args.concurrency), "VANTA_DATABASE_URL": pg_url,
               "VANTA_REDIS_URL": redis_url, "VANTA_NATS_URL": nats_url,
               "VANTA_PROFILE": "production", "VANTA_RUN_DISPATCHER_IN_API": "false",
               "VANTA_MASTER_KEY": MASTER_KEY, **(extra_env or {})}
        tag = f"{n}-{dispatch_workers}"  # one set of files per run of the profile
        pf = tmp / f"api-production-{tag}.port"
        api = procs.start(f"serve-production-{tag}", [*VANTA, "serve", "--no-dispatcher",
                                                    "--port", "0", "--port-file", str(pf)], env)
        started.append(api)
        workers = {f"relay-{tag}": [*VANTA, "worker", "relay", "--nats-url", nats_url,
                                  "--stream", stream]}
        for j in range(dispatch_workers):
            workers[f"dispatch-{tag}-{j}"] = [
                *VANTA, "worker", "dispatch", "--bus", "nats", "--nats-url", nats_url,
                "--stream", stream, "--concurrency", str(args.concurrency),
                "--durable", f"bench-{stream.lower()}"]
        wprocs = {name: procs.start(name, cmd, env) for name, cmd in workers.items()}
        started.extend(wprocs.values())
        port = wait_port_file(pf, api, procs, f"serve-production-{tag}")
        await asyncio.sleep(1.0)  # the relay and the consumers connect to NATS
        for name, p in wprocs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}:\n{procs.tail(name)}")
        pids = [api.pid, *(p.pid for p in wprocs.values())]
        cpu0 = cpu_seconds(pids)
        api_url = f"http://127.0.0.1:{port}"
        rounds = await (drive(api_url, token) if drive is not None else vanta_orders(
            api_url, token, rcv, n, args.orders, f"P{n}w{dispatch_workers}",
            args.order_timeout(n)))
        cpu = cpu_seconds(pids) - cpu0
    finally:
        for p in reversed(started):
            procs.stop(p)
        for fn in reversed(undo):
            try:
                await asyncio.to_thread(fn)
                cleanup.remove(fn)
            except Exception as e:  # left in `cleanup` for one more try at exit
                print(f"cleanup failed: {e!r}", file=sys.stderr)
    workers = "1 dispatch worker" if dispatch_workers == 1 \
        else f"{dispatch_workers} dispatch workers"
    return PathResult(f"vanta production (PostgreSQL, NATS, {workers})", rounds,
                      note=note + f"Seeded {n} followers in {seed_s:.1f} s; "
                                  f"{dispatch_workers} dispatch worker(s), each at "
                                  f"concurrency {args.concurrency}.",
                      cpu_s=cpu, cpu_deliveries=n * (args.orders + 1))


async def measure_production(a: argparse.Namespace, n: int, procs: Procs, tmp: Path,
                             rcv: ReceiverClient, hooks: str, cleanup: list[Any],
                             measure: Callable[[str, str], Awaitable[dict[str, Any]]],
                             extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """``measure(api_url, token)`` against the production profile of ``a`` (its
    ``pg_admin_url``, ``nats_url``, ``concurrency`` and ``dispatch_workers``), with the
    profile's note: what ``burst.py`` and ``faults.py`` run there instead of orders."""
    out: dict[str, Any] = {}

    async def drive(api: str, token: str) -> list[Round]:
        out.update(await measure(api, token))
        return []

    # `orders` only sizes the CPU-per-delivery note, which these benches do not use
    ns = argparse.Namespace(pg_admin_url=a.pg_admin_url, nats_url=a.nats_url,
                            vanta_redis_db=None, concurrency=a.concurrency, orders=0)
    res = await run_production(ns, n, procs, tmp, rcv, hooks, cleanup, a.dispatch_workers,
                               drive=drive, extra_env=extra_env)
    return {**out, "note": res.note}


# -- baselines ---------------------------------------------------------------------------

def baseline_bodies(keys: dict[str, str], hooks: str, group: str
                    ) -> list[tuple[str, str, bytes, str]]:
    """(url, webhook-id, body, whsec) per follower: a body of Vanta's shape and size."""
    out = []
    now = utcnow()
    order = ManagerOrderRecord(
        mo_id=group, tenant_id="", vault_id=VAULT, client_order_id=group, source="api",
        symbol="AAPL", venue="nasdaq", side=Side.BUY, qty=Decimal(10), tif=TimeInForce.DAY,
        ref_price=None, closes_position=False, meta={}, snapshot=None,
        state=ManagerOrderState.EXPANDED, created_at=now)
    # the body reads the follower's scale, cap and kill switch; the rest is filler
    follower = FollowerRecord(
        follower_id="", tenant_id="", vault_id=VAULT, label="", mode=FollowerMode.PROPORTIONAL,
        scale=Decimal(1), max_pos_usd=None, kill_switch=False, webhook_url=None,
        hmac_key_ref=None, bridged_brokers=None, created_at=now, updated_at=now,
        scale_mode=ScaleMode.FIXED, nav_multiplier=Decimal(1), fractional=False,
        paused=False, paused_reason=None, protections=None, plan_id="core",
        overlay_opt_in=False, webhook_keys=None, webhook_disabled_at=None,
        webhook_disabled_reason=None)
    ts = now.isoformat().replace("+00:00", "Z")
    for key, whsec in keys.items():
        wid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{group}/{key}"))
        child = ChildOrderRecord(
            fo_id=wid, mo_id=group, follower_id=key, tenant_id="", vault_id=VAULT,
            symbol="AAPL", venue="nasdaq", side=Side.BUY, qty=Decimal(10), cap_applied=False,
            state=ChildOrderState.SENT, skip_reason=None, broker_order_ref=None,
            dispatch_attempts=1, last_error=None, audit=None, created_at=now, updated_at=now,
            filled_qty=Decimal(0), avg_fill_price=None, dead_lettered_at=None)
        body = dispatch_body(child=child, order=order, follower=follower, ts=ts, attempt_no=1)
        out.append((f"{hooks}/{key}", wid, body, whsec))
    return out


def _key_bytes(whsec: str) -> bytes:
    import base64
    enc = whsec.removeprefix("whsec_")
    return base64.b64decode(enc + "=" * (-len(enc) % 4))


async def run_ceiling(args: argparse.Namespace, n: int, keys: dict[str, str], hooks: str,
                      rcv: ReceiverClient) -> PathResult:
    rounds: list[Round] = []
    conn = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency)
    async with aiohttp.ClientSession(connector=conn) as http:
        for i in range(args.orders + 1):
            group = f"ceiling-{n}-{i}"
            now = int(time.time())
            items = [(url, body, signature_headers([_key_bytes(s)], wid, now, body))
                     for url, wid, body, s in baseline_bodies(keys, hooks, group)]
            errors = 0

            async def worker(it: Iterator[tuple[str, bytes, dict[str, str]]]) -> None:
                nonlocal errors
                for url, body, headers in it:
                    async with http.post(url, data=body, headers=headers) as r:
                        await r.read()
                        errors += r.status != 200

            it = iter(items)
            start = time.time()
            await asyncio.gather(*(worker(it) for _ in range(args.concurrency)))
            if errors:
                raise RuntimeError(f"ceiling: {errors} non-200 answers")
            arrivals = await rcv.wait_group(group, n, args.order_timeout(n))
            if i:
                rounds.append(Round(start, arrivals))
    return PathResult("ceiling (bare aiohttp client, pre-signed)", rounds)


def run_celery(args: argparse.Namespace, n: int, keys: dict[str, str], hooks: str,
               rcv_base: str, procs: Procs) -> PathResult:
    celery_db = pick_redis_db(args.celery_db, set())
    broker = f"redis://127.0.0.1:6379/{celery_db}"
    os.environ["BENCH_CELERY_BROKER"] = broker
    sys.path.insert(0, str(HERE))
    try:
        baseline = importlib.import_module("celery_baseline")
        if broker != baseline.BROKER:  # imported for another N with another db
            baseline = importlib.reload(baseline)
    finally:
        sys.path.remove(str(HERE))
    env = {**os.environ, "BENCH_CELERY_BROKER": broker,
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    name = f"celery-{n}"
    p = procs.start(name, [sys.executable, "-m", "celery", "-A", "celery_baseline", "worker",
                           "--pool", args.celery_pool, "--concurrency", str(args.concurrency),
                           "--loglevel", "WARNING", "-Q", "fanout_baseline",
                           "--without-gossip", "--without-mingle", "--without-heartbeat"],
                    env, cwd=HERE)
    rounds: list[Round] = []

    async def wait(group: str) -> list[float]:
        async with aiohttp.ClientSession() as http:
            return await ReceiverClient(rcv_base, http).wait_group(
                group, n, args.order_timeout(n) + (60 if group.endswith("-0") else 0))

    try:
        for i in range(args.orders + 1):
            group = f"celery-{n}-{i}"
            items = [(url, body.decode(), whsec, wid)
                     for url, wid, body, whsec in baseline_bodies(keys, hooks, group)]
            start = time.time()
            baseline.enqueue(items)
            enqueued = time.time()
            if p.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{procs.tail(name)}")
            arrivals = asyncio.run(wait(group))
            if i:
                rounds.append(Round(start, arrivals, enqueue_s=enqueued - start))
    finally:
        procs.stop(p)
        delete_new_keys(broker, set(), "*")  # the db was empty: every key is the broker's
    return PathResult(f"celery + redis ({args.celery_pool} pool, requests.post)", rounds,
                      note=f"one worker process, --pool {args.celery_pool} --concurrency "
                           f"{args.concurrency}; broker Redis db {celery_db}; tasks enqueued "
                           "from the benchmark process")


# -- one N -------------------------------------------------------------------------------

def run_n(args: argparse.Namespace, n: int, procs: Procs, tmp: Path,
          cleanup: list[Any]) -> dict[str, Any]:
    pf = tmp / f"receiver-{n}.port"
    rp = procs.start(f"receiver-{n}", [sys.executable, str(HERE / "fanout_receiver.py"),
                                       "--port", "0", "--port-file", str(pf)], dict(os.environ))
    try:
        rport = wait_port_file(pf, rp, procs, f"receiver-{n}")
        rbase = f"http://127.0.0.1:{rport}"
        hooks = f"{rbase}/hooks"
        paths: dict[str, Any] = {}
        expected = 0

        # the baselines' followers: the same paths and secrets of the same kind
        keys = {f"b{i:05d}": standard_secret_string(new_webhook_secret()) for i in range(n)}
        (tmp / f"secrets-baselines-{n}.json").write_text(json.dumps(keys))

        async def ceiling_and_vanta() -> None:
            nonlocal expected
            async with aiohttp.ClientSession() as http:
                rcv = ReceiverClient(rbase, http)
                if not args.no_baselines:
                    await rcv.load(tmp / f"secrets-baselines-{n}.json")
                    paths["ceiling"] = await run_ceiling(args, n, keys, hooks, rcv)
                    expected += (args.orders + 1) * n
                if "embedded" in args.profiles:
                    paths["embedded"] = await run_embedded(args, n, procs, tmp, rcv, hooks)
                    expected += (args.orders + 1) * n
                for w in args.dispatch_workers if "production" in args.profiles else ():
                    key = production_key(w)
                    why = production_check(args)
                    if why is None:
                        paths[key] = await run_production(args, n, procs, tmp, rcv, hooks,
                                                          cleanup, w)
                        expected += (args.orders + 1) * n
                    else:
                        paths[key] = why

        asyncio.run(ceiling_and_vanta())
        if not args.no_baselines and not args.no_celery:
            why = celery_check(args)
            if why is None:
                paths["celery"] = run_celery(args, n, keys, hooks, rbase, procs)
                expected += (args.orders + 1) * n
            else:
                paths["celery"] = why

        async def final_stats() -> dict[str, Any]:
            async with aiohttp.ClientSession() as http:
                return await ReceiverClient(rbase, http).get("/_stats")

        stats = asyncio.run(final_stats())
    finally:
        procs.stop(rp)
    out: dict[str, Any] = {"n": n, "orders": args.orders, "concurrency": args.concurrency,
                           "receiver": stats, "expected_deliveries": expected,
                           "all_verified": stats["failed"] == 0
                           and stats["verified"] >= expected, "paths": {}}
    for k, v in paths.items():
        out["paths"][k] = {"name": v.name, **v.summary()} if isinstance(v, PathResult) \
            else {"not_run": v}
    rate = {k: v["deliveries_per_s"] for k, v in out["paths"].items() if "deliveries_per_s" in v}
    ratios = {}
    for prof in [k for k in rate if k not in ("ceiling", "celery")]:
        if prof in rate:
            if "ceiling" in rate:
                ratios[f"{prof}/ceiling"] = round(rate[prof] / rate["ceiling"], 3)
            if "celery" in rate:
                ratios[f"{prof}/celery"] = round(rate[prof] / rate["celery"], 3)
    out["throughput_ratios"] = ratios
    # the issue's latency targets: Vanta's P95 (POST sent) over the ceiling's, same run
    ceil = out["paths"].get("ceiling", {})
    out["latency_ratios"] = {
        f"{k}/ceiling": {"e2e_p95": round(v["e2e_p95_s"] / ceil["e2e_p95_s"], 2),
                         "child_p95": round(v["child_p95_ms"] / ceil["child_p95_ms"], 2)}
        for k, v in out["paths"].items()
        if "e2e_p95_s" in v and "e2e_p95_s" in ceil and k not in ("ceiling", "celery")}
    return out


def production_key(dispatch_workers: int) -> str:
    """``production`` with one dispatch worker, ``production-<k>w`` with k."""
    return "production" if dispatch_workers == 1 else f"production-{dispatch_workers}w"


def celery_check(args: argparse.Namespace) -> str | None:
    try:
        importlib.import_module("celery")
        importlib.import_module("requests")
    except ImportError as e:
        return f"not installed: {e.name} (pip install celery requests)"
    if not port_open("127.0.0.1", 6379):
        return "Redis is not reachable at 127.0.0.1:6379"
    return None


def print_table(r: dict[str, Any]) -> None:
    print(f"\nN = {r['n']:,} followers, {r['orders']} orders (+1 warm-up), "
          f"concurrency {r['concurrency']}; receiver: {r['receiver']['verified']:,} verified, "
          f"{r['receiver']['failed']} failed, {r['receiver']['duplicates']} duplicates")
    print(f"{'path':<58} {'e2e P50 s':>9} {'P95 s':>7} {'child P50 ms':>12} {'P95 ms':>8} "
          f"{'P99 ms':>8} {'deliv/s':>8}")
    for v in r["paths"].values():
        if "not_run" in v:
            continue
        print(f"{v['name']:<58} {v['e2e_p50_s']:>9.3f} {v['e2e_p95_s']:>7.3f} "
              f"{v['child_p50_ms']:>12.1f} {v['child_p95_ms']:>8.1f} {v['child_p99_ms']:>8.1f} "
              f"{v['deliveries_per_s']:>8.0f}")
    for k, v in r["paths"].items():
        if "not_run" in v:
            print(f"{k}: not run: {v['not_run']}")
    for k, v in r["paths"].items():
        if "submit_to_201_p50_s" in v:
            print(f"{k}: POST -> 201 P50 {v['submit_to_201_p50_s']:.3f} s, POST -> last child "
                  f"P50 {v['submit_to_last_p50_s']:.3f} s / P95 {v['submit_to_last_p95_s']:.3f}"
                  f" s; {v['children_before_201']} children arrived before the 201")
        if "cpu_us_per_delivery" in v:
            print(f"{k}: CPU of its processes {v['cpu_s']:.2f} s, "
                  f"{v['cpu_us_per_delivery']:.0f} us per delivery (warm-up included)")
        if "enqueue_p50_s" in v:
            print(f"{k}: enqueuing {r['n']:,} tasks took {v['enqueue_p50_s']:.3f} s (P50)")
    if r["throughput_ratios"]:
        print("throughput " + ", ".join(f"{k} = {v:.2f}"
                                        for k, v in r["throughput_ratios"].items()))
    for k, v in r.get("latency_ratios", {}).items():
        print(f"P95 ratio {k}: POST sent -> last child {v['e2e_p95']:.2f}x, "
              f"per child {v['child_p95']:.2f}x")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="followers (repeat for several)")
    ap.add_argument("--orders", type=int, default=20, help="measured orders (rounds) per N")
    ap.add_argument("--smoke", action="store_true", help="N = 20, 3 orders")
    ap.add_argument("--concurrency", type=int, default=64,
                    help="deliveries in flight: Vanta's dispatcher, the ceiling, Celery")
    ap.add_argument("--profiles", default="embedded,production",
                    help="comma list: embedded, production")
    ap.add_argument("--no-baselines", action="store_true", help="skip ceiling and Celery")
    ap.add_argument("--no-celery", action="store_true",
                    help="skip Celery only (lever comparisons: the ceiling still runs)")
    ap.add_argument("--celery-pool", choices=("threads", "prefork"), default="threads")
    ap.add_argument("--celery-db", type=int, default=13,
                    help="Redis db of the Celery broker (another empty one if it holds keys)")
    ap.add_argument("--vanta-redis-db", type=int, default=None,
                    help="Redis db of the production profile's API (default: an empty one)")
    ap.add_argument("--dispatch-workers", type=int, action="append",
                    help="production profile: `vanta worker dispatch` processes (default 1; "
                         "repeat to run the profile once per count)")
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "fanout.json")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    args.dispatch_workers = args.dispatch_workers or [1]
    if min(args.dispatch_workers) < 1:
        ap.error("--dispatch-workers takes counts of at least 1")
    if args.smoke:
        args.n, args.orders = args.n or [20], 3
    args.n = args.n or [100, 1_000, 10_000]
    args.profiles = {p.strip() for p in args.profiles.split(",") if p.strip()}
    if not args.profiles <= {"embedded", "production"}:
        ap.error("--profiles takes embedded and/or production")
    args.order_timeout = lambda n: 120 + n * 0.2
    for k in [k for k in os.environ if k.startswith("VANTA_")]:
        del os.environ[k]  # this process (seeding) and the servers must see the same config

    def on_term(*_: object) -> None:
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, on_term)
    tmp = Path(tempfile.mkdtemp(prefix="vanta-fanout-"))
    procs = Procs(tmp)
    cleanup: list[Any] = []
    results = []
    t_start = time.perf_counter()
    try:
        for n in args.n:
            t = time.perf_counter()
            r = run_n(args, n, procs, tmp, cleanup)
            r["wall_s"] = round(time.perf_counter() - t, 1)
            results.append(r)
            print_table(r)
            sys.stdout.flush()
    except BaseException:
        for name, _ in procs.procs:
            print(f"--- {name} (last lines) ---\n{procs.tail(name)}", file=sys.stderr)
        raise
    finally:
        procs.stop_all()
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print(f"cleanup failed: {e!r}", file=sys.stderr)
        if not args.keep:
            import shutil
            shutil.rmtree(tmp, ignore_errors=True)
    ok = all(r["all_verified"] for r in results)
    report = {"python": platform.python_version(), "machine": platform.machine(),
              "cpus": os.cpu_count(), "smoke": args.smoke, "all_verified": ok,
              "wall_s": round(time.perf_counter() - t_start, 1),
              "config": {"orders": args.orders, "concurrency": args.concurrency,
                         "celery_pool": args.celery_pool, "n": args.n,
                         "dispatch_workers": args.dispatch_workers,
                         "profiles": sorted(args.profiles), "baselines": not args.no_baselines},
              "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print(f"\n{'every delivery verified' if ok else 'VERIFICATION FAILURES'}; "
          f"results in {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
