"""What routing costs an order's expansion: one manager order for N webhook followers over
SQLite, an equities order (no legs) and a crypto order (every child routed over the four
built-in venues, its legs stored), alternated in one run so both see the same machine.

    .venv/bin/python bench/crossrail_expand.py            # N = 200, 5 rounds
    .venv/bin/python bench/crossrail_expand.py --n 50 --rounds 3

Reports the median wall time of each kind and their ratio, and writes JSON to
bench/results/crossrail_expand.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.migrate import upgrade_async
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.application.followers import register_follower
from vanta.application.manager_orders import parse_order_input, submit_manager_order
from vanta.application.seed import create_tenant, create_vault


async def _run(n: int, rounds: int) -> dict[str, object]:
    tmp = tempfile.TemporaryDirectory()
    url = f"sqlite+aiosqlite:///{tmp.name}/bench.db"
    await upgrade_async(url)
    engine = make_engine(url)
    uow = lambda: SqlUnitOfWork(engine)  # noqa: E731
    secrets = LocalSecretStore(Path(tmp.name) / "secrets")
    await create_tenant(uow(), tenant_id="t", name="t")
    await create_vault(uow(), tenant_id="t", vault_id="V", label="V")
    for i in range(n):
        await register_follower(uow(), secrets, tenant_id="t", vault_id="V", actor="bench",
                                raw={"label": f"f{i}", "scale": "0.5", "fractional": True,
                                     "webhook": {"url": f"https://f{i}.example/hook"}})
    times: dict[str, list[float]] = {"equities": [], "crypto": []}
    for r in range(rounds):
        for kind, symbol, price in (("equities", "AAPL", "100"), ("crypto", "BTC-USD",
                                                                  "40000")):
            order = parse_order_input({"id": f"{kind}-{r}", "vault_id": "V", "symbol": symbol,
                                       "side": "buy", "qty": "1", "ref_price": price})
            start = time.perf_counter()
            await submit_manager_order(uow(), tenant_id="t", order=order, source="bench",
                                       actor="bench")
            times[kind].append(time.perf_counter() - start)
    await engine.dispose()
    tmp.cleanup()
    eq, cr = (statistics.median(times[k]) for k in ("equities", "crypto"))
    return {"n": n, "rounds": rounds, "median_s": {"equities": eq, "crypto": cr},
            "ratio_crypto_over_equities": cr / eq, "per_follower_routing_ms":
            (cr - eq) / n * 1000, "python": platform.python_version(),
            "cpus": os.cpu_count()}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    out = asyncio.run(_run(args.n, args.rounds))
    print(json.dumps(out, indent=2))
    path = Path(__file__).parent / "results" / "crossrail_expand.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
