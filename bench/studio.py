"""Replay Studio over 10,000 recorded orders, against 1 and 8 configurations, on one core.

    .venv/bin/python bench/studio.py               # 10,000 orders (embedded SQLite)
    .venv/bin/python bench/studio.py --orders 1000 # a quick look
    .venv/bin/python bench/studio.py --db-url postgresql+asyncpg://…/db  # an empty database

Seeds a vault with 5 followers and N manager orders (realistic stored snapshots: every
follower's settings, positions and NAVs; a child per follower), then times the whole run as
the API does it: window, streaming the orders from the database in chunks, the simulation,
the real follower's children beside it (8 configurations only), sealing, storing and
auditing the run. Reports the median CPU and wall time of 3 runs and the peak memory the
process grew by, and writes JSON to bench/results/studio.json.
Targets: 1 configuration < 5 s, 8 configurations < 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.migrate import upgrade_async
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.application.studio import Window, parse_request, run_studio
from vanta.domain.ids import ChildOrderId, FollowerId, ManagerOrderId
from vanta.domain.orders import ChildOrder, ChildOrderState, Side
from vanta.domain.studio_windows import PLAN_LIMITS

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
FOLLOWERS = [f"bench-f{i}" for i in range(5)]
SYMBOLS = ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN"]
CONFIGS: list[dict[str, Any]] = [
    {"label": "s0.10", "scale": "0.1"}, {"label": "s0.25", "scale": "0.25"},
    {"label": "s0.50", "scale": "0.5", "fees": {"rate": "0.2"}},
    {"label": "capped", "mode": "capped", "max_pos_usd": "20000", "plan": "pro"},
    {"label": "guards", "scale": "0.5", "protections": {"drawdown_stop_pct": "15",
                                                        "max_order_usd": "5000"}},
    {"label": "navratio", "scale_mode": "nav_ratio", "nav_multiplier": "1"},
    {"label": "frac", "scale": "0.33", "fractional": True, "fees": {"rate": "0.1",
                                                                    "period": "week"}},
    {"label": "overlays", "scale": "0.25", "plan": "pro", "overlay_opt_in": True},
]


async def seed(url: str, n: int) -> None:
    engine = make_engine(url)
    rng = random.Random(7)
    pos = dict.fromkeys(SYMBOLS, Decimal(0))
    price = {s: Decimal(rng.randint(50, 500)) for s in SYMBOLS}
    async with SqlUnitOfWork(engine) as u:
        await u.tenants.add({"tenant_id": "t", "name": "T", "created_at": T0})
        await u.vaults.add({"vault_id": "V", "tenant_id": "t", "label": "V", "rails": {},
                            "personas": [], "risk_profile": {}, "created_at": T0})
        for f in FOLLOWERS:
            await u.followers.add({"follower_id": f, "tenant_id": "t", "vault_id": "V",
                                   "label": f, "mode": "proportional", "scale": Decimal("0.5"),
                                   "created_at": T0, "updated_at": T0})
        await u.commit()
    for start in range(0, n, 1000):
        async with SqlUnitOfWork(engine) as u:
            for i in range(start, min(n, start + 1000)):
                sym = rng.choice(SYMBOLS)
                price[sym] = max(Decimal(1), price[sym] + Decimal(rng.randint(-300, 300)) / 100)
                side = Side.SELL if pos[sym] > 0 and rng.random() < 0.45 else Side.BUY
                qty = Decimal(rng.randint(1, 200)) if side is Side.BUY else \
                    min(pos[sym], Decimal(rng.randint(1, 200)))
                mo = f"mo-{i:06d}"
                snap = {"price": str(price[sym]), "manager_nav": "1000000",
                        "manager_position": str(pos[sym]), "sizing_version": 2,
                        "overlay": {}, "positions": {f: "10" for f in FOLLOWERS},
                        "navs": {f: ["50000", "60000", "51000"] for f in FOLLOWERS},
                        "followers": [{"follower_id": f, "mode": "proportional",
                                       "scale": "0.5"} for f in FOLLOWERS],
                        "instrument": {"symbol": sym, "venue": "default", "lot_step": "1",
                                       "min_qty": "1", "min_notional": "0",
                                       "fractional_step": "0.0001"}}
                await u.manager_orders.add({
                    "mo_id": mo, "tenant_id": "t", "vault_id": "V", "client_order_id": mo,
                    "source": "api", "symbol": sym, "venue": "default", "side": side.value,
                    "qty": qty, "tif": "day", "ref_price": price[sym], "meta": {},
                    "snapshot": snap, "state": "completed",
                    "created_at": T0 + timedelta(minutes=7 * i)})
                pos[sym] += qty if side is Side.BUY else -qty
                await u.child_orders.add_many([ChildOrder(
                    ChildOrderId(f"{mo}-{f}"), ManagerOrderId(mo), FollowerId(f), sym,
                    "default", side, (qty / 2).quantize(Decimal(1)), False,
                    ChildOrderState.ACK, None, {}) for f in FOLLOWERS],
                    tenant_id="t", vault_id="V", now=T0 + timedelta(minutes=7 * i))
            await u.commit()
    await engine.dispose()


async def once(url: str, n: int, configs: int) -> tuple[float, float, str, int]:
    engine = make_engine(url)
    req = parse_request(vault_id="V", window=Window(last=n), starting_nav=Decimal(100_000),
                        configs=CONFIGS[:configs],
                        follower_id=FOLLOWERS[0] if configs > 1 else None)
    t0, c0 = time.perf_counter(), time.process_time()
    result = await run_studio(SqlUnitOfWork(engine), tenant_id="t", req=req,
                              limits=PLAN_LIMITS["institutional"], actor="bench")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    await engine.dispose()
    # the answer is not decoded here: that would hold the whole tree in memory
    assert f'"orders":{n},'.encode() in result.canonical
    return cpu, wall, result.sha256, len(result.canonical)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    tmp = tempfile.TemporaryDirectory()
    url = args.db_url or f"sqlite+aiosqlite:///{tmp.name}/studio.db"
    await upgrade_async(url)
    t0 = time.perf_counter()
    await seed(url, args.orders)
    print(f"seeded {args.orders} orders in {time.perf_counter() - t0:.1f} s")
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = []
    for configs, target in ((1, 5.0), (8, 15.0)):
        runs = [await once(url, args.orders, configs) for _ in range(args.runs)]
        assert len({r[2] for r in runs}) == 1, "the same run gave different hashes"
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        size = runs[0][3] / 2**20
        out.append({"orders": args.orders, "configs": configs, "cpu_s": round(cpu, 3),
                    "wall_s": round(wall, 3), "answer_mib": round(size, 1), "target_s": target,
                    "met": wall < target if args.orders == 10_000 else None})
        print(f"{args.orders} orders x {configs} config(s): cpu {cpu:.2f} s, "
              f"wall {wall:.2f} s (target {target:.0f} s at 10,000), answer {size:.1f} MiB")
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss0
    print(f"peak memory grew by {grown / 1024:.0f} MiB over the runs")
    tmp.cleanup()
    return {"results": out, "peak_rss_growth_mib": round(grown / 1024), "db": url.split(":")[0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--db-url", default=None, help="an empty, migratable database")
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results") /
                    "studio.json")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core
    report = asyncio.run(main_async(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(
        {"machine": platform.platform(), "python": platform.python_version(), **report},
        indent=2))


if __name__ == "__main__":
    main()
