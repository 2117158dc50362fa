"""Plan a reconciliation of one vault: N followers × S symbols, on one core.

    .venv/bin/python bench/reconcile_plan.py             # N = 1,000 / 10,000, S = 10
    .venv/bin/python bench/reconcile_plan.py --smoke     # N = 1,000 only, 3 runs

The pure planner only (``domain.reconciliation.plan``): targets sized from the manager's
book, drift, fix-ups and blocked reasons. Followers are a mix of fixed and NAV-ratio scales,
caps, order-notional limits, deny lists, symbol maps and kill switches; books drift randomly
(about a third of the positions off by up to 30 %, some orders in flight). Reports the median
CPU time of several runs and the time per follower-symbol; JSON goes to
bench/results/reconcile_plan.json. Reading positions from brokers is I/O and not measured.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId
from vanta.domain.money import Instrument
from vanta.domain.reconciliation import DERIVED, Book, Holding, plan
from vanta.domain.sizing import NavState

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def _world(n: int, s: int, seed: int = 7) -> tuple[list[Holding], list[Book],
                                                    dict[str, Instrument]]:
    rnd = random.Random(seed)
    symbols = [f"S{i:02d}" for i in range(s)]
    holdings = [Holding(sym, Decimal(rnd.randint(0, 5_000)), "paper",
                        Decimal(rnd.randint(5, 900))) for sym in symbols]
    instruments = {sym: Instrument(sym, "paper", Decimal(1), Decimal(1), Decimal(0),
                                   Decimal("0.0001")) for sym in symbols}
    books = []
    for i in range(n):
        mode = rnd.choice([FollowerMode.PROPORTIONAL, FollowerMode.CAPPED])
        spec = FollowerSpec(
            FollowerId(f"f{i:06d}"), mode, Decimal(rnd.choice(["0.1", "0.5", "1", "2"])),
            Decimal(50_000) if mode is FollowerMode.CAPPED else None,
            kill_switch=rnd.random() < 0.02,
            scale_mode=rnd.choice([ScaleMode.FIXED, ScaleMode.NAV_RATIO]),
            fractional=rnd.random() < 0.3,
            protections=Protections(
                max_order_usd=Decimal(20_000) if rnd.random() < 0.2 else None,
                deny_symbols=frozenset({"S03"}) if rnd.random() < 0.1 else frozenset(),
                symbol_map={"S01": "S01.X"} if rnd.random() < 0.1 else {}))
        positions, pending = {}, {}
        for h in holdings:
            sym = spec.protections.symbol_map.get(h.symbol, h.symbol)
            base = h.qty * spec.scale
            off = Decimal(rnd.uniform(-0.3, 0.3)).quantize(Decimal("0.01")) \
                if rnd.random() < 0.33 else Decimal(0)
            positions[sym] = (base * (1 + off)).quantize(Decimal(1))
            if rnd.random() < 0.05:
                pending[sym] = Decimal(rnd.randint(1, 20))
        nav = Decimal(rnd.randint(100_000, 5_000_000))
        books.append(Book(spec, positions, DERIVED, None, pending, NavState(nav, nav, nav),
                          rnd.choice([25, 50, 100])))
    return holdings, books, instruments


def _run(n: int, s: int, runs: int) -> dict[str, float]:
    holdings, books, instruments = _world(n, s)
    cpu, wall, fixups = [], [], 0
    for _ in range(runs):
        c0, w0 = time.process_time(), time.perf_counter()
        p = plan(holdings, books, instruments, manager_nav=Decimal(20_000_000), now=NOW)
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        fixups = len(p.fixups)
    med = statistics.median(cpu)
    return {"followers": n, "symbols": s, "cpu_s": round(med, 3),
            "wall_s": round(statistics.median(wall), 3),
            "us_per_follower_symbol": round(med / (n * s) * 1e6, 1), "fixups": fixups}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--symbols", type=int, default=10)
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    sizes = [1_000] if args.smoke else [1_000, 10_000]
    runs = 3 if args.smoke else args.runs
    results = [_run(n, args.symbols, runs) for n in sizes]
    for r in results:
        print(f"N={r['followers']:>6} × {r['symbols']} symbols: {r['cpu_s']:.3f} s CPU "
              f"({r['us_per_follower_symbol']} µs per follower-symbol), "
              f"{r['fixups']} fix-ups")
    out = Path(__file__).with_name("results")
    out.mkdir(exist_ok=True)
    (out / "reconcile_plan.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
