"""PostgreSQL: inserting N child order rows as an executemany against one
``INSERT ... SELECT FROM unnest(...)``, alternated in one process (the choice behind the
repositories' ``_insert_many``).

    .venv/bin/python bench/insert_many.py --n 10000 --rounds 3

Each round inserts N rows both ways, each in its own rolled-back transaction with the
table's foreign-key triggers off (no parent rows needed; those checks cost the same both
ways), and prints the median wall and client CPU time per way. Needs PostgreSQL at --pg-admin-url.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import asyncpg
from sqlalchemy import insert, text

from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.migrate import upgrade
from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import follower_orders


def rows(n: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [{"fo_id": f"fo{i:08d}", "mo_id": "MO", "follower_id": "F", "tenant_id": "T",
             "vault_id": "V", "symbol": "AAPL", "venue": "nasdaq", "side": "buy",
             "qty": Decimal("1.5"), "cap_applied": False, "state": "pending",
             "skip_reason": None, "dispatch_attempts": 0, "last_error": None,
             "audit": {"sizing": {"scale": "1"}}, "created_at": now, "updated_at": now}
            for i in range(n)]


async def run(url: str, n: int, rounds: int) -> None:
    engine = make_engine(url)
    times: dict[str, list[tuple[float, float]]] = {"executemany": [], "unnest": []}
    data = rows(n)
    for _ in range(rounds):
        for way in times:
            async with engine.connect() as c:
                tx = await c.begin()
                # no parent rows: the foreign-key checks (the same both ways) are left out
                await c.execute(text("ALTER TABLE follower_orders DISABLE TRIGGER ALL"))
                w, p = time.perf_counter(), time.process_time()
                if way == "executemany":
                    await c.execute(insert(follower_orders), data)
                else:
                    await _Repo(c)._insert_many(follower_orders, data)
                times[way].append((time.perf_counter() - w, time.process_time() - p))
                await tx.rollback()
    await engine.dispose()
    for way, got in times.items():
        print(f"{way:<12} N = {n:,}: wall {statistics.median(g[0] for g in got):.3f} s, "
              f"client CPU {statistics.median(g[1] for g in got):.3f} s (median of {rounds})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    name = f"vanta_ins_{uuid.uuid4().hex[:8]}"

    async def admin(sql: str) -> None:
        c = await asyncpg.connect(args.pg_admin_url)
        try:
            await c.execute(sql)
        finally:
            await c.close()
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    url = "postgresql+asyncpg://" + args.pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0] \
        + f"/{name}"
    try:
        upgrade(url)
        asyncio.run(run(url, args.n, args.rounds))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
