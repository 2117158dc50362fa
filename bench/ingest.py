"""Accepting one manager order for N followers, phase by phase, on SQLite and PostgreSQL.

    .venv/bin/python bench/ingest.py --n 10000            # both databases, 3 orders each
    .venv/bin/python bench/ingest.py --n 1000 --db sqlite

Calls ``submit_manager_order`` in process (no HTTP) and times each of its writes by wrapping
the repository methods it calls: reading the followers, sizing (snapshot and expansion), the
order row, the children, the outbox rows (with the rendered bodies), the audit events and
the commit. Prints the median per phase and its share of the order's wall time: the share
of expansion in a fan-out is this total against the fan-out bench's POST sent -> last child.
Needs PostgreSQL at --pg-admin-url for the PostgreSQL run (skipped with a reason if absent).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fanout  # noqa: E402  (the fan-out bench's seeding)

from vanta.adapters.db.repositories.audit import AuditRepository  # noqa: E402
from vanta.adapters.db.repositories.catalog import FollowerRepository  # noqa: E402
from vanta.adapters.db.repositories.delivery import OutboxRepository  # noqa: E402
from vanta.adapters.db.repositories.orders import (  # noqa: E402
    ChildOrderRepository,
    ManagerOrderRepository,
)
from vanta.adapters.db.uow import SqlUnitOfWork  # noqa: E402
from vanta.application import manager_orders  # noqa: E402
from vanta.bootstrap import build  # noqa: E402

PHASES: dict[str, tuple[Any, str]] = {
    "read followers": (FollowerRepository, "list_for_vault"),
    "snapshot": (manager_orders, "build_snapshot"),
    "size (expand)": (manager_orders, "expand"),
    "order row": (ManagerOrderRepository, "add"),
    "children insert": (ChildOrderRepository, "add_many"),
    "outbox rows (bodies)": (OutboxRepository, "add_many"),
    "audit events": (AuditRepository, "append_many"),
    "commit": (SqlUnitOfWork, "commit"),
}
spent: dict[str, float] = defaultdict(float)


def _timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    if asyncio.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def awrap(*a: Any, **k: Any) -> Any:
            t = time.perf_counter()
            try:
                return await fn(*a, **k)
            finally:
                spent[name] += time.perf_counter() - t
        return awrap

    @functools.wraps(fn)
    def wrap(*a: Any, **k: Any) -> Any:
        t = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            spent[name] += time.perf_counter() - t
    return wrap


def instrument() -> None:
    for name, (owner, attr) in PHASES.items():
        setattr(owner, attr, _timed(name, getattr(owner, attr)))


async def run(db: str, url: str | None, n: int, orders: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="vanta-ingest-") as tmp:
        settings = fanout.profile_settings(Path(tmp), url)
        await fanout.seed(settings, n, "i", "http://127.0.0.1:9/hooks")
        c = build(settings)
        try:
            totals: list[float] = []
            phases: dict[str, list[float]] = defaultdict(list)
            for i in range(orders + 1):  # the first is a warm-up
                order = manager_orders.parse_order_input(
                    {"id": f"I{n}-{i}", "vault_id": fanout.VAULT, "symbol": "AAPL",
                     "side": "buy", "qty": 10, "ref_price": 190})
                spent.clear()
                t = time.perf_counter()
                await manager_orders.submit_manager_order(
                    c.uow(), tenant_id=fanout.TENANT, order=order, source="api",
                    actor="bench")
                if i:
                    totals.append(time.perf_counter() - t)
                    for k in PHASES:
                        phases[k].append(spent.get(k, 0.0))
        finally:
            await c.close()
    total = statistics.median(totals)
    out = {k: statistics.median(v) for k, v in phases.items()}
    out["other"] = max(0.0, total - sum(out.values()))
    return {"db": db, "n": n, "total_s": total, "phases_s": out}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, action="append")
    ap.add_argument("--orders", type=int, default=3)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    instrument()
    for n in args.n or [1000, 10000]:
        for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
            url = None
            if db == "postgresql":
                if not fanout.port_open("127.0.0.1", 5432):
                    print("postgresql: skipped, nothing listens on 127.0.0.1:5432")
                    continue
                name = f"vanta_ingest_{time.time_ns() % 10**9}"
                asyncio.run(fanout._pg(args.pg_admin_url, f'CREATE DATABASE "{name}"'))
                url = "postgresql+asyncpg://" + \
                    args.pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
            try:
                r = asyncio.run(run(db, url, n, args.orders))
            finally:
                if url is not None:
                    asyncio.run(fanout._pg(args.pg_admin_url,
                                           f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            print(f"\n{db}, N = {n:,}: one order accepted in {r['total_s']:.3f} s (median of "
                  f"{args.orders})")
            for k, v in r["phases_s"].items():
                print(f"  {k:<22} {v * 1000:9.1f} ms  {v / r['total_s']:6.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
