"""Lever 3 alone: recording a dispatch batch's audit as one chained event per child
(``append_many``, what the dispatcher did before) or as one chained event with a Merkle
root over the children's records (``append_batch``, what it does now), alternated in one
process on the embedded profile's SQLite and on PostgreSQL.

    .venv/bin/python bench/audit_batch.py --batch 256 --rounds 40

Each round appends one batch both ways, each in its own committed unit of work through the
real repositories (the head row lock, the hashing, the inserts), and records the wall and
process CPU time. Prints medians per batch and per record, and their ratio. PostgreSQL is
skipped when --pg-admin-url cannot be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fanout import _pg, profile_settings  # type: ignore[import-not-found]

from vanta.application.seed import create_tenant
from vanta.bootstrap import build

TENANT = "tnt_bench"


def records(n: int, round_no: int) -> list[dict[str, Any]]:
    return [{"entity": "follower_order", "entity_id": f"fo-{round_no:04d}-{i:05d}",
             "action": "dispatch:ack", "tenant_id": TENANT,
             "payload": {"attempt": 1, "status": 200, "error": None, "latency_ms": 3,
                         "retry_in_s": None}} for i in range(n)]


async def measure(database_url: str | None, batch: int, rounds: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="vanta-audit-batch-"))
    c = build(profile_settings(data, database_url))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id=TENANT, name="audit bench")
    times: dict[str, list[tuple[float, float]]] = {"per child": [], "per batch": []}
    try:
        for r in range(rounds):
            for way in times:
                recs = records(batch, r * 2 + (way == "per batch"))
                w0, c0 = time.perf_counter(), time.process_time()
                async with c.uow() as uow:
                    if way == "per child":
                        await uow.audit.append_many([{**x, "actor": "dispatcher"}
                                                     for x in recs])
                    else:
                        await uow.audit.append_batch(recs, actor="dispatcher")
                    await uow.commit()
                times[way].append((time.perf_counter() - w0, time.process_time() - c0))
    finally:
        await c.close()
    out: dict[str, Any] = {}
    for way, xs in times.items():
        wall = statistics.median(x[0] for x in xs[2:])  # the first two rounds warm up
        cpu = statistics.median(x[1] for x in xs[2:])
        out[way] = {"wall_ms": wall * 1000, "cpu_ms": cpu * 1000}
    return out


def show(name: str, res: dict[str, Any], batch: int) -> None:
    a, b = res["per child"], res["per batch"]
    print(f"{name}: batch of {batch}")
    for way in ("per child", "per batch"):
        x = res[way]
        print(f"  {way:9s}  wall {x['wall_ms']:8.2f} ms ({x['wall_ms'] * 1000 / batch:6.1f} us"
              f"/record)  CPU {x['cpu_ms']:8.2f} ms ({x['cpu_ms'] * 1000 / batch:6.1f} us/record)")
    print(f"  per child / per batch: wall {a['wall_ms'] / b['wall_ms']:.2f}x, "
          f"CPU {a['cpu_ms'] / b['cpu_ms']:.2f}x")


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=40)
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    show("embedded (SQLite)", await measure(None, args.batch, args.rounds), args.batch)
    db = f"vanta_audit_bench_{secrets.token_hex(4)}"
    try:
        await _pg(args.pg_admin_url, f'CREATE DATABASE "{db}"')
    except OSError as e:
        print(f"PostgreSQL skipped: {e}")
        return
    try:
        host = args.pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0]
        show("production (PostgreSQL)", await measure(f"postgresql+asyncpg://{host}/{db}",
                                                      args.batch, args.rounds), args.batch)
    finally:
        await _pg(args.pg_admin_url, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


if __name__ == "__main__":
    asyncio.run(main())
