"""Expand and size one manager order for N followers, on one core.

    .venv/bin/python bench/expand.py            # N = 1,000 / 10,000 / 100,000
    .venv/bin/python bench/expand.py --smoke    # N = 1,000 only, 3 runs

Reports the median CPU time (one pinned core) and wall time of several runs per N and the
CPU time per follower, and writes JSON to
bench/results/expand.json. Followers are a realistic mix: fixed and NAV-ratio scales, caps,
order-notional limits, symbol lists, kill switches, shadow followers and an active overlay.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, manager_order_id
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import default_instrument
from vanta.domain.orders import ManagerOrder, Side, TimeInForce
from vanta.domain.overlays import Overlay, OverlayKind, effect_of
from vanta.domain.sizing import NavState


def followers(n: int, rng: random.Random) -> list[FollowerSpec]:
    out = []
    for i in range(n):
        capped = rng.random() < 0.4
        out.append(FollowerSpec(
            follower_id=FollowerId(f"f{i:07d}"),
            mode=FollowerMode.SHADOW if rng.random() < 0.05 else (
                FollowerMode.CAPPED if capped else FollowerMode.PROPORTIONAL),
            scale=Decimal(rng.randint(1, 200)) / 100,
            max_pos_usd=Decimal(rng.randint(500, 50_000)) if capped else None,
            kill_switch=rng.random() < 0.02,
            scale_mode=ScaleMode.NAV_RATIO if rng.random() < 0.3 else ScaleMode.FIXED,
            fractional=rng.random() < 0.3,
            protections=Protections(
                max_order_usd=Decimal(5000) if rng.random() < 0.2 else None,
                deny_symbols=frozenset({"GME"}) if rng.random() < 0.1 else frozenset()),
            flip_allowed=rng.random() < 0.3, persona_allowed=rng.random() < 0.3,
        ))
    return out


def snapshot(specs: list[FollowerSpec], rng: random.Random) -> Snapshot:
    now = datetime(2026, 1, 5, 15, tzinfo=UTC)
    overlay = Overlay("o1", OverlayKind.FLIP, Decimal("0.35"), "Apollo", now,
                      now + timedelta(minutes=30))
    navs = {s.follower_id: NavState(Decimal(rng.randint(5_000, 500_000)),
                                    Decimal(600_000), Decimal(500_000)) for s in specs}
    held = {s.follower_id: Decimal(rng.randint(0, 40)) for s in specs if rng.random() < 0.5}
    return Snapshot(price=Decimal("187.35"), positions=held, manager_nav=Decimal(2_000_000),
                    manager_position=Decimal(500), navs=navs,
                    overlay=effect_of([overlay], now + timedelta(minutes=1)))


def run(n: int, repeats: int) -> dict[str, float]:
    rng = random.Random(n)
    specs = followers(n, rng)
    snap = snapshot(specs, rng)
    order = ManagerOrder(manager_order_id("V", "M-1"), "V", "M-1", "AAPL", "nasdaq",  # type: ignore[arg-type]
                         Side.BUY, Decimal(120), TimeInForce.DAY, Decimal("187.35"))
    inst = default_instrument("AAPL", "nasdaq")
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        e = expand(order, specs, inst, snap)
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        assert len(e.children) == n
    med = statistics.median(cpu)
    return {"n": n, "repeats": repeats, "median_cpu_s": round(med, 4),
            "median_wall_s": round(statistics.median(wall), 4),
            "us_per_follower": round(med / n * 1e6, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    sizes = [(1_000, 3)] if args.smoke else [(1_000, 15), (10_000, 9), (100_000, 5)]
    results = [run(n, r) for n, r in sizes]
    base = results[0]["us_per_follower"]
    print(f"{'followers':>10} {'cpu s':>8} {'wall s':>8} {'us/follower':>12} {'vs 1k':>6}")
    for r in results:
        r["per_follower_vs_1k"] = round(r["us_per_follower"] / base, 2)
        print(f"{r['n']:>10,} {r['median_cpu_s']:>8.4f} {r['median_wall_s']:>8.4f} "
              f"{r['us_per_follower']:>12.2f} {r['per_follower_vs_1k']:>6.2f}")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "expand.json").write_text(json.dumps(
        {"python": platform.python_version(), "machine": platform.machine(),
         "results": results}, indent=2))


if __name__ == "__main__":
    main()
