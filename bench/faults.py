"""Fault injection: one bad endpoint must not slow the others.

    .venv/bin/python bench/faults.py                      # 500 followers x 10 orders
    .venv/bin/python bench/faults.py --n 100 --orders 3   # quicker
    .venv/bin/python bench/faults.py --profiles embedded  # without the services

Embedded profile (``vanta serve`` over SQLite, in-process dispatcher) and production profile
(PostgreSQL, Redis, NATS JetStream, a relay and ``--dispatch-workers`` dispatch workers, as
``fanout.py`` runs it), one receiver (``fanout_receiver.py``). Two phases per profile on the
same server and followers:

1. no faults: ``--orders`` orders posted back to back; each first attempt's time from its
   order's POST being sent;
2. faults: the receiver answers each request, at random (seeded), 503 (``--p5xx``, 20 %),
   hangs past the webhook timeout (``--ptimeout``, 5 %), drops the connection (``--preset``,
   5 %) or answers 200 after ``--slow-s`` (``--pslow``, 5 %); the same number of orders.

Printed: first-attempt P95 of requests the receiver answered at once (phase 2 against
phase 1: the target is within 1.5x), how late each retry started against the retry schedule
(its delay + 20 % jitter after the previous attempt ended; target: within 1 s), the drain
time (every child acknowledged or dead-lettered; target: the schedule's length + 15 s), and
children lost (neither acknowledged nor dead-lettered) or acknowledged twice (both: 0).
Results go to ``bench/results/faults.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import (  # type: ignore[import-not-found]
    HERE,
    VANTA,
    VAULT,
    Procs,
    ReceiverClient,
    base_env,
    measure_production,
    pct,
    production_check,
    profile_settings,
    seed,
    wait_port_file,
)

SCHEDULE = (1.0, 5.0, 15.0, 60.0)
JITTER = 0.2


async def post_orders(http: aiohttp.ClientSession, api: str, token: str, tag: str,
                      orders: int) -> dict[str, float]:
    """Posts the orders back to back; {mo_id: time the POST was sent}."""
    sent: dict[str, float] = {}
    for i in range(orders):
        order = {"id": f"{tag}-{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                 "qty": 10, "ref_price": 190}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        t = time.time()
        async with http.post(f"{api}/v1/manager-orders", json=order, headers=headers) as r:
            body = await r.json()
            if r.status != 201:
                raise RuntimeError(f"HTTP {r.status}: {body}")
        sent[body["mo_id"]] = t
    return sent


async def wait_drained(http: aiohttp.ClientSession, api: str, token: str,
                       mo_ids: list[str], timeout: float) -> tuple[float, dict[str, int]]:
    """Until every order is completed (no child pending, sent or in retry); (time, counts)."""
    headers = {"Authorization": f"Bearer {token}"}
    deadline = time.time() + timeout
    while True:
        counts: dict[str, int] = {}
        done = True
        for mo in mo_ids:
            async with http.get(f"{api}/v1/manager-orders/{mo}", headers=headers) as r:
                body = await r.json()
            done = done and body["state"] == "completed"
            for c in body["children"]:
                counts[c["state"]] = counts.get(c["state"], 0) + 1
        if done or time.time() > deadline:
            return time.time(), counts
        await asyncio.sleep(0.5)


def answered_at(arrival: float, kind: str, a: argparse.Namespace) -> float:
    """When the sender learnt the attempt's outcome, as the receiver sees it."""
    if kind == "timeout":
        return arrival + a.webhook_timeout
    if kind == "slow":
        return arrival + a.slow_s
    return arrival


def analyse(attempts: dict[str, dict[str, list[list[Any]]]], sent: dict[str, float],
            a: argparse.Namespace) -> dict[str, Any]:
    first_ok: list[float] = []
    late: list[float] = []
    for mo, by_wid in attempts.items():
        for tries in by_wid.values():
            tries.sort()
            if tries[0][1] == "ok":
                first_ok.append(tries[0][0] - sent[mo])
            for k in range(1, len(tries)):
                prev_end = answered_at(tries[k - 1][0], tries[k - 1][1], a)
                due = SCHEDULE[min(k - 1, len(SCHEDULE) - 1)] * (1 + JITTER)
                late.append(tries[k][0] - prev_end - due)
    out: dict[str, Any] = {"first_attempts_ok": len(first_ok), "retries": len(late)}
    if first_ok:
        out["first_ok_p50_ms"] = round(pct(first_ok, 50) * 1000, 1)
        out["first_ok_p95_ms"] = round(pct(first_ok, 95) * 1000, 1)
    if late:
        out["retry_late_p50_s"] = round(pct(late, 50), 2)
        out["retry_late_p95_s"] = round(pct(late, 95), 2)
        out["retry_late_max_s"] = round(max(late), 2)
        out["retries_over_1s_late"] = sum(1 for x in late if x > 1.0)
    return out


async def phase(http: aiohttp.ClientSession, api: str, rbase: str, token: str, tag: str,
                a: argparse.Namespace, faults: dict[str, float]) -> dict[str, Any]:
    async with http.post(f"{rbase}/_admin/faults", json=faults) as r:
        r.raise_for_status()
    t0 = time.time()
    sent = await post_orders(http, api, token, tag, a.orders)
    end, counts = await wait_drained(http, api, token, list(sent), a.drain_timeout)
    attempts = {}
    for mo in sent:
        async with http.get(f"{rbase}/_attempts/{mo}") as r:
            attempts[mo] = (await r.json())["attempts"]
    async with http.get(f"{rbase}/_stats") as r:
        stats = await r.json()
    open_left = sum(v for k, v in counts.items() if k in ("pending", "sent", "retry"))
    return {"faults": faults, "drain_s": round(end - t0, 1), "states": counts,
            "lost": open_left, "duplicates": stats["duplicates"],
            **analyse(attempts, sent, a)}


def dispatcher_env(a: argparse.Namespace) -> dict[str, str]:
    env = {"VANTA_WEBHOOK_TIMEOUT_SECONDS": str(a.webhook_timeout)}
    if a.lease_seconds:  # else the default: short, renewed while a send runs
        env["VANTA_DISPATCHER_LEASE_SECONDS"] = str(a.lease_seconds)
    if a.max_batches:
        env["VANTA_DISPATCHER_MAX_BATCHES"] = str(a.max_batches)
    return env


async def both_phases(http: aiohttp.ClientSession, api: str, rbase: str, token: str,
                      a: argparse.Namespace, tag: str) -> dict[str, Any]:
    """A warm-up order, the phase without faults, then the one with them."""
    await post_orders(http, api, token, f"warm-{tag}", 1)
    clean = await phase(http, api, rbase, token, f"clean-{tag}", a, {"seed": 1, "5xx": 0.0})
    faulty = await phase(http, api, rbase, token, f"faults-{tag}", a, {
        "seed": 1, "5xx": a.p5xx, "timeout": a.ptimeout, "reset": a.preset,
        "slow": a.pslow, "slow_s": a.slow_s, "hang_s": a.webhook_timeout * 3})
    await http.post(f"{rbase}/_admin/faults", json={"seed": 1, "5xx": 0.0})
    ratio = None
    if clean.get("first_ok_p95_ms") and faulty.get("first_ok_p95_ms"):
        ratio = round(faulty["first_ok_p95_ms"] / clean["first_ok_p95_ms"], 2)
    return {"no_faults": clean, "faults": faulty, "first_ok_p95_ratio": ratio}


async def run_embedded(a: argparse.Namespace, tmp: Path, procs: Procs, rbase: str,
                       http: aiohttp.ClientSession) -> dict[str, Any]:
    data = tmp / "embedded"
    keys, token = await seed(profile_settings(data, None), a.n, "f", f"{rbase}/hooks")
    (tmp / "secrets.json").write_text(json.dumps(keys))
    env = {**base_env(data, a.concurrency), **dispatcher_env(a)}
    sp = tmp / "api.port"
    p = procs.start("serve", [*VANTA, "serve", "--port", "0", "--port-file", str(sp)], env)
    try:
        api = f"http://127.0.0.1:{wait_port_file(sp, p, procs, 'serve')}"
        await ReceiverClient(rbase, http).load(tmp / "secrets.json")
        return await both_phases(http, api, rbase, token, a, "e")
    finally:
        procs.stop(p)


async def run(a: argparse.Namespace, tmp: Path, procs: Procs,
              cleanup: list[Any]) -> dict[str, Any]:
    pf = tmp / "receiver.port"
    rp = procs.start("receiver", [sys.executable, str(HERE / "fanout_receiver.py"),
                                  "--port", "0", "--port-file", str(pf)], dict(os.environ))
    rbase = f"http://127.0.0.1:{wait_port_file(pf, rp, procs, 'receiver')}"
    result: dict[str, Any] = {"n": a.n, "orders": a.orders, "schedule_s": sum(SCHEDULE),
                              "profiles": {}}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http:
        for profile in a.profiles:
            if profile == "embedded":
                result["profiles"][profile] = await run_embedded(a, tmp, procs, rbase, http)
                continue
            why = production_check(argparse.Namespace())
            result["profiles"][profile] = {"not_run": why} if why is not None \
                else await measure_production(
                    a, a.n, procs, tmp, ReceiverClient(rbase, http), f"{rbase}/hooks",
                    cleanup, lambda api, token: both_phases(http, api, rbase, token, a, "p"),
                    extra_env=dispatcher_env(a))
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--orders", type=int, default=10)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--p5xx", type=float, default=0.20)
    ap.add_argument("--ptimeout", type=float, default=0.05)
    ap.add_argument("--preset", type=float, default=0.05)
    ap.add_argument("--pslow", type=float, default=0.05)
    ap.add_argument("--slow-s", type=float, default=1.0)
    ap.add_argument("--webhook-timeout", type=float, default=5.0)
    ap.add_argument("--drain-timeout", type=float, default=400.0)
    ap.add_argument("--lease-seconds", type=float, default=None,
                    help="VANTA_DISPATCHER_LEASE_SECONDS (default: the platform's)")
    ap.add_argument("--max-batches", type=int, default=None,
                    help="VANTA_DISPATCHER_MAX_BATCHES (default: the platform's)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "faults.json")
    ap.add_argument("--profiles", default="embedded,production",
                    help="comma list: embedded, production")
    ap.add_argument("--dispatch-workers", type=int, default=2,
                    help="production profile: `vanta worker dispatch` processes")
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    a = ap.parse_args()
    a.profiles = [p.strip() for p in a.profiles.split(",") if p.strip()]
    for k in [k for k in os.environ if k.startswith("VANTA_")]:
        del os.environ[k]
    tmp = Path(tempfile.mkdtemp(prefix="vanta-faults-"))
    procs = Procs(tmp)
    cleanup: list[Any] = []
    try:
        r = asyncio.run(run(a, tmp, procs, cleanup))
    finally:
        procs.stop_all()
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print(f"cleanup failed: {e!r}", file=sys.stderr)
        shutil.rmtree(tmp, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=2))
    ok = True
    for profile, res in r["profiles"].items():
        if "not_run" in res:
            print(f"{profile}: not run ({res['not_run']})")
            continue
        for name in ("no_faults", "faults"):
            v = res[name]
            print(f"{profile} {name}: drain {v['drain_s']} s, states {v['states']}, lost "
                  f"{v['lost']}, duplicated {v['duplicates']}; first attempts answered at "
                  f"once: P50 {v.get('first_ok_p50_ms')} ms, P95 {v.get('first_ok_p95_ms')} ms")
            if v.get("retries"):
                print(f"  {v['retries']} retries: started after schedule + jitter by P50 "
                      f"{v['retry_late_p50_s']} s, P95 {v['retry_late_p95_s']} s, max "
                      f"{v['retry_late_max_s']} s; {v['retries_over_1s_late']} more than "
                      "1 s late")
        print(f"{profile}: healthy first-attempt P95, faults / no faults: "
              f"{res['first_ok_p95_ratio']}x (target <= 1.5); drain target "
              f"{r['schedule_s'] + 15:.0f} s")
        ok = ok and res["faults"]["lost"] == 0 and res["faults"]["duplicates"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
