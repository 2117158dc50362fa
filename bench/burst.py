"""Bursts: many clients post orders to one vault at once.

    .venv/bin/python bench/burst.py                         # 16 clients, 100 followers, 20 s
    .venv/bin/python bench/burst.py --clients 4 --seconds 5 # quicker
    .venv/bin/python bench/burst.py --profiles embedded     # one profile

Profiles as in ``fanout.py``: embedded (``vanta serve`` over SQLite, in-process dispatcher)
and production (PostgreSQL, Redis, NATS: ``vanta serve --no-dispatcher``, a relay and
``--dispatch-workers`` dispatch workers), with the fan-out benchmark's receiver
(``fanout_receiver.py``, every signature verified). In one run:

1. the ceiling: a bare aiohttp client posting pre-signed bodies to the receiver
   (``fanout.run_ceiling``, 1,000 bodies a round, 3 rounds), for the deliveries/s it reaches;
2. per profile, one client alone posting orders one after another for ``--lone-seconds``:
   its accept time (POST sent -> 201) P50;
3. then ``--clients`` clients posting orders one after another for ``--seconds``, then
   waiting until every child has arrived.

An answer other than 201 is counted by status (the API must never answer 5xx); a 503 with
``Retry-After`` is retried after it with the same ``Idempotency-Key``, as a client should.
Printed per profile: orders and children accepted per second, children delivered per second
(from the first POST to the last arrival) and their share of the ceiling (target: >= 0.4),
the burst's accept P95 against the lone client's P50 (target: <= 3x), and the answers that
were not 201. Results go to ``bench/results/burst.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets as pysecrets
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter
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
    run_ceiling,
    seed,
    wait_port_file,
)

from vanta.domain.webhook_signing import (
    new_webhook_secret,
    standard_secret_string,
)

Accepted = tuple[str, float, float]  # (mo_id, POST sent, 201 received)


async def client(http: aiohttp.ClientSession, api: str, token: str, tag: str,
                 until: float, out: list[Accepted], refused: Counter[int]) -> None:
    """Orders one after another until ``until``; appends (mo_id, sent, accepted)."""
    i = 0
    while time.time() < until:
        order = {"id": f"{tag}-{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                 "qty": 10, "ref_price": 190}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        sent = time.time()
        while True:
            async with http.post(f"{api}/v1/manager-orders", json=order,
                                 headers=headers) as r:
                body = await r.json(content_type=None)
                if r.status == 201:
                    break
                refused[r.status] += 1
                if r.status != 503 or "Retry-After" not in r.headers:
                    raise RuntimeError(f"HTTP {r.status}: {body}")
                await asyncio.sleep(float(r.headers["Retry-After"]))
        out.append((body["mo_id"], sent, time.time()))
        i += 1


async def clients(http: aiohttp.ClientSession, api: str, token: str, k: int,
                  seconds: float, tag: str, refused: Counter[int]) -> list[Accepted]:
    out: list[Accepted] = []
    until = time.time() + seconds
    await asyncio.gather(*(client(http, api, token, f"{tag}{j}", until, out, refused)
                           for j in range(k)))
    return out


async def measure(a: argparse.Namespace, http: aiohttp.ClientSession, rcv: ReceiverClient,
                  api: str, token: str, tag: str) -> dict[str, Any]:
    """The lone client, then the burst, against one running profile."""
    refused: Counter[int] = Counter()
    lone = await clients(http, api, token, 1, a.lone_seconds, f"{tag}lone", refused)
    for mo, _, _ in lone:
        await rcv.wait_group(mo, a.followers, 120)
    started = time.time()
    burst = await clients(http, api, token, a.clients, a.seconds, f"{tag}burst", refused)
    last = 0.0
    for mo, _, _ in burst:
        got = await rcv.wait_group(mo, a.followers, 300)
        last = max(last, *got)
    children = len(burst) * a.followers
    delivered_per_s = children / (last - started)
    accept = [acc - sent for _, sent, acc in burst]
    lone_p50 = pct([acc - sent for _, sent, acc in lone], 50)
    return {
        "lone": {"orders": len(lone), "accept_p50_ms": round(lone_p50 * 1000, 1),
                 "orders_per_s": round(len(lone) / a.lone_seconds, 1)},
        "burst": {"orders": len(burst), "orders_per_s": round(len(burst) / a.seconds, 1),
                  "children_accepted_per_s": round(children / a.seconds, 1),
                  "children_delivered_per_s": round(delivered_per_s, 1),
                  "accept_p50_ms": round(pct(accept, 50) * 1000, 1),
                  "accept_p95_ms": round(pct(accept, 95) * 1000, 1)},
        "not_201": {str(k): v for k, v in sorted(refused.items())},
        "accept_p95_over_lone_p50": round(pct(accept, 95) / lone_p50, 2),
    }


async def run_embedded(a: argparse.Namespace, tmp: Path, procs: Procs, http: Any,
                       rcv: ReceiverClient, hooks: str) -> dict[str, Any]:
    data = tmp / "embedded"
    keys, token = await seed(profile_settings(data, None), a.followers, "s", hooks)
    (tmp / "secrets-embedded.json").write_text(json.dumps(keys))
    await rcv.load(tmp / "secrets-embedded.json")
    env = base_env(data, a.concurrency)
    sp = tmp / "api.port"
    p = procs.start("serve", [*VANTA, "serve", "--port", "0", "--port-file", str(sp)], env)
    try:
        api = f"http://127.0.0.1:{wait_port_file(sp, p, procs, 'serve')}"
        return await measure(a, http, rcv, api, token, "e")
    finally:
        procs.stop(p)


async def run(a: argparse.Namespace, tmp: Path, procs: Procs,
              cleanup: list[Any]) -> dict[str, Any]:
    pf = tmp / "receiver.port"
    rp = procs.start("receiver", [sys.executable, str(HERE / "fanout_receiver.py"),
                                  "--port", "0", "--port-file", str(pf)], dict(os.environ))
    rbase = f"http://127.0.0.1:{wait_port_file(pf, rp, procs, 'receiver')}"
    hooks = f"{rbase}/hooks"
    bkeys = {f"b{i:05d}": standard_secret_string(new_webhook_secret()) for i in range(1000)}
    (tmp / "secrets.json").write_text(json.dumps(bkeys))
    result: dict[str, Any] = {"followers": a.followers, "clients": a.clients,
                              "seconds": a.seconds, "profiles": {}}
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=600)) as http:
        rcv = ReceiverClient(rbase, http)
        await rcv.load(tmp / "secrets.json")
        ns = argparse.Namespace(orders=3, concurrency=a.concurrency,
                                order_timeout=lambda n: 120 + n * 0.2)
        ceiling = (await run_ceiling(ns, 1000, bkeys, hooks, rcv)).summary()
        result["ceiling_deliveries_per_s"] = ceiling["deliveries_per_s"]
        for profile in a.profiles:
            if profile == "embedded":
                r = await run_embedded(a, tmp, procs, http, rcv, hooks)
            else:
                why = production_check(argparse.Namespace())
                if why is not None:
                    result["profiles"][profile] = {"not_run": why}
                    continue
                r = await measure_production(
                    a, a.followers, procs, tmp, rcv, hooks, cleanup,
                    lambda api, token: measure(a, http, rcv, api, token, "p"))
            r["delivered_over_ceiling"] = round(
                r["burst"]["children_delivered_per_s"] / ceiling["deliveries_per_s"], 3)
            result["profiles"][profile] = r
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--followers", type=int, default=100)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--lone-seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--profiles", default="embedded,production",
                    help="comma list: embedded, production")
    ap.add_argument("--dispatch-workers", type=int, default=2,
                    help="production profile: `vanta worker dispatch` processes")
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ap.add_argument("--nats-url", default="nats://127.0.0.1:4222")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "burst.json")
    a = ap.parse_args()
    a.profiles = [p.strip() for p in a.profiles.split(",") if p.strip()]
    for k in [k for k in os.environ if k.startswith("VANTA_")]:
        del os.environ[k]
    tmp = Path(tempfile.mkdtemp(prefix=f"vanta-burst-{pysecrets.token_hex(2)}-"))
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
    print(f"ceiling {r['ceiling_deliveries_per_s']:.0f} deliveries/s")
    for name, p in r["profiles"].items():
        if "not_run" in p:
            print(f"{name}: not run ({p['not_run']})")
            continue
        b, lone = p["burst"], p["lone"]
        print(f"{name}: one client {lone['orders_per_s']} orders/s, accept P50 "
              f"{lone['accept_p50_ms']} ms; {r['clients']} clients, {r['followers']} "
              f"followers, {r['seconds']:.0f} s: {b['orders_per_s']} orders/s, "
              f"{b['children_accepted_per_s']} children accepted/s, "
              f"{b['children_delivered_per_s']} delivered/s ({p['delivered_over_ceiling']} of "
              f"the ceiling; target >= 0.4); accept P50 {b['accept_p50_ms']} ms, P95 "
              f"{b['accept_p95_ms']} ms ({p['accept_p95_over_lone_p50']}x the lone P50; "
              f"target <= 3); answers other than 201: {p['not_201'] or 'none'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
