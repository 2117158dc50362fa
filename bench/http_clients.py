"""HTTP clients side by side: aiohttp (what the dispatcher uses) against a Rust-backed client.

    .venv/bin/python bench/http_clients.py                  # 5 rounds x 4,000 POSTs, 64 at once
    .venv/bin/python bench/http_clients.py --requests 1000 --rounds 3

A local receiver (aiohttp, its own process, 127.0.0.1) answers every ``POST /hooks/<n>``
with a small JSON 200. Each client posts a 600-byte body with the webhook headers, keeping
connections alive (a pool of ``--concurrency``), ``--concurrency`` requests in flight, and
reads each answer whole. Clients:

* ``aiohttp``: a bare ``aiohttp.ClientSession``;
* ``pyreqwest``: a bare ``pyreqwest`` client (reqwest/hyper under tokio), redirects off;
* ``vanta sender``: the dispatcher's own ``AiohttpWebhookSender`` (target vetting on every
  send, a total timeout, capped reads, no redirects, per-endpoint slots): what a delivery
  really costs on the client side.

Rounds alternate the clients' order; printed are the medians over rounds of requests/s,
per-request latency P50/P95 and the client process's CPU time per request. Results go to
``bench/results/http_clients.json``. A client that is not installed is reported as such.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
BODY = b'{"fo_id":"' + b"x" * 560 + b'","qty":"1"}'
HEADERS = {"content-type": "application/json", "webhook-id": "fo_1",
           "webhook-timestamp": "1700000000", "webhook-signature": "v1,abc"}
Post = Callable[[str], Awaitable[int]]


def serve(port_file: str) -> None:
    """The receiver (run in its own process)."""
    from aiohttp import web

    async def hook(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True})

    async def main() -> None:
        app = web.Application()
        app.router.add_post("/hooks/{n}", hook)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        port = runner.addresses[0][1]
        Path(port_file).write_text(str(port))
        await asyncio.Event().wait()

    asyncio.run(main())


def pct(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s)) - 1))]


async def drive(post: Post, base: str, n: int, concurrency: int) -> dict[str, float]:
    lat: list[float] = []
    it = iter(range(n))

    async def worker() -> None:
        for i in it:
            t = time.perf_counter()
            status = await post(f"{base}/hooks/{i % 500}")
            lat.append(time.perf_counter() - t)
            if status != 200:
                raise RuntimeError(f"HTTP {status}")
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"rps": n / wall, "p50_ms": pct(lat, 50) * 1000, "p95_ms": pct(lat, 95) * 1000,
            "cpu_us_per_req": cpu / n * 1e6}


async def aiohttp_client(concurrency: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency),
                                    timeout=aiohttp.ClientTimeout(total=10))

    async def post(url: str) -> int:
        async with session.post(url, data=BODY, headers=HEADERS,
                                allow_redirects=False) as r:
            await r.read()
            return r.status
    return post, session.close


async def pyreqwest_client(concurrency: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder
    client = (ClientBuilder().max_connections(concurrency).follow_redirects(False)
              .timeout(timedelta(seconds=10)).build())

    async def post(url: str) -> int:
        req = client.post(url).body_bytes(BODY)
        for k, v in HEADERS.items():
            req = req.header(k, v)
        r = await req.build().send()  # the answer read whole (not streamed)
        await r.bytes()
        return int(r.status)
    return post, client.close


async def vanta_sender(concurrency: int) -> tuple[Post, Callable[[], Awaitable[None]]]:
    from vanta.adapters.webhooks.sender import AiohttpWebhookSender
    from vanta.adapters.webhooks.ssrf import TargetPolicy
    sender = AiohttpWebhookSender(timeout_seconds=10, connections=concurrency,
                                  policy=TargetPolicy(allowlist=["127.0.0.1/32"]),
                                  per_endpoint_limit=concurrency)

    async def post(url: str) -> int:
        res = await sender.send(url, dict(HEADERS), BODY)
        return res.status or 0
    return post, sender.close


CLIENTS = {"aiohttp": aiohttp_client, "pyreqwest": pyreqwest_client,
           "vanta sender": vanta_sender}


async def run(a: argparse.Namespace, base: str) -> dict[str, Any]:
    available: dict[str, Any] = {}
    missing: dict[str, str] = {}
    for name, make in CLIENTS.items():
        try:
            post, close = await make(a.concurrency)
        except ImportError as e:
            missing[name] = repr(e)
            continue
        await drive(post, base, min(500, a.requests), a.concurrency)  # warm the pool
        available[name] = (post, close)
    rounds: dict[str, list[dict[str, float]]] = {n: [] for n in available}
    names = list(available)
    for r in range(a.rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            rounds[name].append(await drive(available[name][0], base, a.requests,
                                            a.concurrency))
    for _, close in available.values():
        await close()
    out: dict[str, Any] = {"requests": a.requests, "rounds": a.rounds,
                           "concurrency": a.concurrency, "missing": missing, "clients": {}}
    for name, rs in rounds.items():
        out["clients"][name] = {k: round(statistics.median(x[k] for x in rs), 2)
                                for k in rs[0]}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "http_clients.json")
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.serve:
        serve(a.serve)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        pf = Path(tmp) / "port"
        rcv = subprocess.Popen([sys.executable, __file__, "--serve", str(pf)])
        try:
            for _ in range(200):
                if pf.exists() and pf.read_text():
                    break
                time.sleep(0.05)
            base = f"http://127.0.0.1:{pf.read_text()}"
            r = asyncio.run(run(a, base))
        finally:
            rcv.terminate()
            rcv.wait(10)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(r, indent=2))
    print(f"{r['requests']} POSTs x {r['rounds']} rounds, {r['concurrency']} in flight, "
          "keep-alive; medians over rounds")
    print(f"{'client':14} {'req/s':>8} {'P50 ms':>8} {'P95 ms':>8} {'CPU us/req':>11}")
    for name, v in r["clients"].items():
        print(f"{name:14} {v['rps']:8.0f} {v['p50_ms']:8.2f} {v['p95_ms']:8.2f} "
              f"{v['cpu_us_per_req']:11.1f}")
    base_rps = r["clients"].get("aiohttp", {}).get("rps")
    if base_rps:
        for name, v in r["clients"].items():
            print(f"  {name}: {v['rps'] / base_rps:.2f}x aiohttp's rate")
    for name, why in r["missing"].items():
        print(f"{name}: not installed ({why})")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
