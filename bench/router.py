"""Route decisions per second: the cross-rail router over the four built-in venues.

    .venv/bin/python bench/router.py [--decisions 20000] [--rounds 5]

Each decision prices the direct and the USDC route of every venue (eight routes) for a random
buy or sell, balance and buffer, and picks one. Reports the median CPU time per decision over
the rounds; JSON goes to bench/results/router.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from decimal import Decimal
from pathlib import Path

from vanta.domain.routing import RouteRequest, choose_route
from vanta.domain.venues import DEFAULT_FEE_MODELS, KNOWN_VENUES


def requests(n: int, rng: random.Random) -> list[RouteRequest]:
    return [RouteRequest("BTC", rng.choice(["buy", "sell"]),
                         Decimal(rng.randint(1, 500_000)).scaleb(-5),
                         Decimal(rng.randint(2_000_000, 9_000_000)).scaleb(-2),
                         Decimal(rng.randint(0, 10_000_000)).scaleb(-2),
                         Decimal(rng.randint(0, 2_000_000)).scaleb(-2),
                         Decimal(rng.randint(0, 500_000)).scaleb(-2), 2000, KNOWN_VENUES)
            for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--decisions", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    reqs = requests(args.decisions, random.Random(7))
    models = dict(DEFAULT_FEE_MODELS)
    per: list[float] = []
    for _ in range(args.rounds):
        start = time.process_time()
        for r in reqs:
            choose_route(r, models)
        per.append((time.process_time() - start) / len(reqs))
    us = statistics.median(per) * 1e6
    out = {"decisions": args.decisions, "rounds": args.rounds, "us_per_decision": round(us, 2),
           "decisions_per_cpu_second": round(1e6 / us)}
    print(json.dumps(out))
    path = Path(__file__).parent / "results" / "router.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
