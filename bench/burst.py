"""Bursts: many clients post orders to one vault at once.

    .venv/bin/python bench/burst.py                         # 16 clients, 100 followers, 20 s
    .venv/bin/python bench/burst.py --clients 4 --seconds 5 # quicker

Embedded profile (``vanta serve`` over SQLite, in-process dispatcher) and the fan-out
benchmark's receiver (``fanout_receiver.py``, every signature verified). In one run:

1. the ceiling: a bare aiohttp client posting pre-signed bodies to the receiver
   (``fanout.run_ceiling``, 1,000 bodies a round, 3 rounds), for the deliveries/s it reaches;
2. one client alone posting orders one after another for ``--lone-seconds``: its accept time
   (POST sent -> 201) P50;
3. ``--clients`` clients posting orders one after another for ``--seconds``, then waiting
   until every child has arrived.

Printed: orders and children accepted per second, children delivered per second (from the
first POST to the last arrival) and their share of the ceiling (target: >= 0.4), and the
burst's accept P95 against the lone client's P50 (target: <= 3x). Results go to
``bench/results/burst.json``.
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
    pct,
    profile_settings,
    run_ceiling,
    seed,
    wait_port_file,
)

from vanta.domain.webhook_signing import (
    new_webhook_secret,
    standard_secret_string,
)


async def client(http: aiohttp.ClientSession, api: str, token: str, tag: str,
                 until: float, out: list[tuple[str, float, float]]) -> None:
    """Orders one after another until ``until``; appends (mo_id, sent, accepted)."""
    i = 0
    while time.time() < until:
        order = {"id": f"{tag}-{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                 "qty": 10, "ref_price": 190}
        headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
        sent = time.time()
        async with http.post(f"{api}/v1/manager-orders", json=order, headers=headers) as r:
            body = await r.json()
            if r.status != 201:
                raise RuntimeError(f"HTTP {r.status}: {body}")
        out.append((body["mo_id"], sent, time.time()))
        i += 1


async def clients(http: aiohttp.ClientSession, api: str, token: str, k: int,
                  seconds: float, tag: str) -> list[tuple[str, float, float]]:
    out: list[tuple[str, float, float]] = []
    until = time.time() + seconds
    await asyncio.gather(*(client(http, api, token, f"{tag}{j}", until, out)
                           for j in range(k)))
    return out


async def run(a: argparse.Namespace, tmp: Path, procs: Procs) -> dict[str, Any]:
    pf = tmp / "receiver.port"
    rp = procs.start("receiver", [sys.executable, str(HERE / "fanout_receiver.py"),
                                  "--port", "0", "--port-file", str(pf)], dict(os.environ))
    rbase = f"http://127.0.0.1:{wait_port_file(pf, rp, procs, 'receiver')}"
    hooks = f"{rbase}/hooks"
    data = tmp / "embedded"
    keys, token = await seed(profile_settings(data, None), a.followers, "s", hooks)
    bkeys = {f"b{i:05d}": standard_secret_string(new_webhook_secret()) for i in range(1000)}
    (tmp / "secrets.json").write_text(json.dumps({**keys, **bkeys}))
    env = base_env(data, a.concurrency)
    sp = tmp / "api.port"
    p = procs.start("serve", [*VANTA, "serve", "--port", "0", "--port-file", str(sp)], env)
    api = f"http://127.0.0.1:{wait_port_file(sp, p, procs, 'serve')}"
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn,
                                     timeout=aiohttp.ClientTimeout(total=600)) as http:
        rcv = ReceiverClient(rbase, http)
        await rcv.load(tmp / "secrets.json")
        ns = argparse.Namespace(orders=3, concurrency=a.concurrency,
                                order_timeout=lambda n: 120 + n * 0.2)
        ceiling = (await run_ceiling(ns, 1000, bkeys, hooks, rcv)).summary()
        lone = await clients(http, api, token, 1, a.lone_seconds, "lone")
        for mo, _, _ in lone:
            await rcv.wait_group(mo, a.followers, 120)
        started = time.time()
        burst = await clients(http, api, token, a.clients, a.seconds, "burst")
        last = 0.0
        for mo, _, _ in burst:
            got = await rcv.wait_group(mo, a.followers, 300)
            last = max(last, *got)
    children = len(burst) * a.followers
    delivered_per_s = children / (last - started)
    accept = [acc - sent for _, sent, acc in burst]
    lone_p50 = pct([acc - sent for _, sent, acc in lone], 50)
    return {
        "followers": a.followers, "clients": a.clients, "seconds": a.seconds,
        "ceiling_deliveries_per_s": ceiling["deliveries_per_s"],
        "lone": {"orders": len(lone), "accept_p50_ms": round(lone_p50 * 1000, 1),
                 "orders_per_s": round(len(lone) / a.lone_seconds, 1)},
        "burst": {"orders": len(burst), "orders_per_s": round(len(burst) / a.seconds, 1),
                  "children_accepted_per_s": round(children / a.seconds, 1),
                  "children_delivered_per_s": round(delivered_per_s, 1),
                  "accept_p50_ms": round(pct(accept, 50) * 1000, 1),
                  "accept_p95_ms": round(pct(accept, 95) * 1000, 1)},
        "delivered_over_ceiling": round(delivered_per_s / ceiling["deliveries_per_s"], 3),
        "accept_p95_over_lone_p50": round(pct(accept, 95) / lone_p50, 2),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--followers", type=int, default=100)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--lone-seconds", type=float, default=10.0)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "burst.json")
    a = ap.parse_args()
    for k in [k for k in os.environ if k.startswith("VANTA_")]:
        del os.environ[k]
    tmp = Path(tempfile.mkdtemp(prefix=f"vanta-burst-{pysecrets.token_hex(2)}-"))
    procs = Procs(tmp)
    try:
        r = asyncio.run(run(a, tmp, procs))
    finally:
        procs.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=2))
    b, lone = r["burst"], r["lone"]
    print(f"ceiling {r['ceiling_deliveries_per_s']:.0f} deliveries/s")
    print(f"one client: {lone['orders_per_s']} orders/s, accept P50 {lone['accept_p50_ms']} ms")
    print(f"{r['clients']} clients, {r['followers']} followers, {r['seconds']:.0f} s: "
          f"{b['orders_per_s']} orders/s, {b['children_accepted_per_s']} children accepted/s, "
          f"{b['children_delivered_per_s']} delivered/s ({r['delivered_over_ceiling']} of the "
          f"ceiling; target >= 0.4); accept P50 {b['accept_p50_ms']} ms, P95 "
          f"{b['accept_p95_ms']} ms ({r['accept_p95_over_lone_p50']}x the lone P50; "
          "target <= 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
