"""The accept path alone: what one ``POST /v1/manager-orders`` costs the API process.

    .venv/bin/python bench/accept.py                    # 1 and 100 followers, 200 orders each
    .venv/bin/python bench/accept.py --n 1 --orders 500

The API runs in this process (its ASGI app over the embedded profile's SQLite, the dispatcher
off, so nothing else competes for the database), driven by one client posting orders one
after another to one vault of N webhook followers. Per order it records the wall time from
the POST to the 201 and the CPU time the process spent on it (``time.process_time``: every
thread, the SQLite connection threads included). On a shared machine the CPU time is the
steadier figure: wall time mostly measures what else was running. The vault keeps every
order, so a cost that grows with its history shows as a rising last-decile figure.
Results go to ``bench/results/accept.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import HERE, VAULT, pct, profile_settings, seed  # type: ignore[import-not-found]

from vanta.bootstrap import build
from vanta.entrypoints.api.app import create_app


def summary(xs: list[float]) -> dict[str, float]:
    tail = xs[len(xs) * 9 // 10:]  # the last tenth: the vault at its longest history
    return {"p50_ms": round(pct(xs, 50) * 1000, 2), "p95_ms": round(pct(xs, 95) * 1000, 2),
            "mean_ms": round(statistics.mean(xs) * 1000, 2),
            "last_tenth_mean_ms": round(statistics.mean(tail) * 1000, 2)}


async def run_n(n: int, orders: int, warmup: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix=f"vanta-accept-{n}-"))
    # receivers are never called (no dispatcher), so the hooks need not exist
    _, token = await seed(profile_settings(data, None), n, "a", "http://127.0.0.1:9/hooks")
    s = profile_settings(data, None).model_copy(update={
        "rate_limit_per_minute": 10_000_000, "rate_limit_burst": 10_000_000})
    c = build(s)
    app = create_app(c, run_dispatcher=False)
    wall: list[float] = []
    cpu: list[float] = []
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://bench") as http:
            for i in range(warmup + orders):
                body = {"id": f"o{i}", "vault_id": VAULT, "symbol": "AAPL", "side": "buy",
                        "qty": 10, "ref_price": 190}
                headers = {"Authorization": f"Bearer {token}",
                           "Idempotency-Key": uuid.uuid4().hex}
                t0, c0 = time.perf_counter(), time.process_time()
                r = await http.post("/v1/manager-orders", json=body, headers=headers)
                t1, c1 = time.perf_counter(), time.process_time()
                if r.status_code != 201:
                    raise RuntimeError(f"HTTP {r.status_code}: {r.text[:300]}")
                if i >= warmup:
                    wall.append(t1 - t0)
                    cpu.append(c1 - c0)
    finally:
        await c.close()
    return {"n": n, "orders": orders, "wall": summary(wall), "cpu": summary(cpu)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append", help="followers (repeat)")
    ap.add_argument("--orders", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "accept.json")
    a = ap.parse_args()
    results = [asyncio.run(run_n(n, a.orders, a.warmup)) for n in (a.n or [1, 100])]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(results, indent=2))
    for r in results:
        w, c = r["wall"], r["cpu"]
        print(f"N = {r['n']:>4}, {r['orders']} orders: POST -> 201 P50 {w['p50_ms']} ms, "
              f"P95 {w['p95_ms']} ms; CPU per order P50 {c['p50_ms']} ms, mean "
              f"{c['mean_ms']} ms, last tenth {c['last_tenth_mean_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
