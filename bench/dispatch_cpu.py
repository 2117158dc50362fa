"""The dispatcher's own CPU per delivery, without HTTP: what a delivery costs besides its
request (leases, attempt rows, state moves, bodies, signatures, audit, metrics).

    .venv/bin/python bench/dispatch_cpu.py --n 2000 --orders 3      # SQLite and PostgreSQL

Seeds N webhook followers (as ``fanout.py`` does), accepts ``--orders`` orders in process,
then drains the outbox with the real ``Dispatcher`` whose sender answers 200 at once, and
reports the process CPU time (user + system, ``time.process_time``) and the wall time per
delivery, median over ``--repeat`` drains. CPU time moves much less than wall time when the
machine is shared, so lever comparisons use it; PostgreSQL's own CPU is not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import fanout  # noqa: E402  (the fan-out bench's seeding)

from vanta.application import manager_orders  # noqa: E402
from vanta.application.ports.delivery import SendResult  # noqa: E402
from vanta.bootstrap import build  # noqa: E402


class AtOnce:
    """A sender that answers 200 without a request, counting what it was given."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.sent += 1
        return SendResult(200, 0, "ok", None)


async def drain(c: Any, sender: AtOnce) -> None:
    c.dispatcher.sender = sender
    while await c.dispatcher.run_once():
        pass


async def run(url: str | None, n: int, orders: int, repeat: int) -> dict[str, float]:
    cpu: list[float] = []
    wall: list[float] = []
    with tempfile.TemporaryDirectory(prefix="vanta-dcpu-") as tmp:
        settings = fanout.profile_settings(Path(tmp), url)
        await fanout.seed(settings, n, "d", "http://127.0.0.1:9/hooks")
        c = build(settings)
        # one receiving host for every follower here: no per-endpoint share gets in the way
        c.dispatcher.config.batch = 128
        c.dispatcher.config.per_endpoint = 1 << 30
        try:
            for rep in range(repeat + 1):  # the first is a warm-up
                for i in range(orders):
                    order = manager_orders.parse_order_input(
                        {"id": f"D{rep}-{i}", "vault_id": fanout.VAULT, "symbol": "AAPL",
                         "side": "buy", "qty": 10, "ref_price": 190})
                    await manager_orders.submit_manager_order(
                        c.uow(), tenant_id=fanout.TENANT, order=order, source="api",
                        actor="bench")
                sender = AtOnce()
                c0, w0 = time.process_time(), time.perf_counter()
                await drain(c, sender)
                c1, w1 = time.process_time(), time.perf_counter()
                if sender.sent != n * orders:
                    raise RuntimeError(f"sent {sender.sent}, expected {n * orders}")
                if rep:
                    cpu.append((c1 - c0) / sender.sent)
                    wall.append((w1 - w0) / sender.sent)
        finally:
            await c.close()
    return {"cpu_us": statistics.median(cpu) * 1e6, "wall_us": statistics.median(wall) * 1e6}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--orders", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--pg-admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = ap.parse_args()
    for db in ("sqlite", "postgresql") if args.db == "both" else (args.db,):
        url = name = None
        if db == "postgresql":
            name = f"vanta_dcpu_{time.time_ns() % 10**9}"
            asyncio.run(fanout._pg(args.pg_admin_url, f'CREATE DATABASE "{name}"'))
            url = "postgresql+asyncpg://" + \
                args.pg_admin_url.split("://", 1)[1].rsplit("/", 1)[0] + f"/{name}"
        try:
            r = asyncio.run(run(url, args.n, args.orders, args.repeat))
        finally:
            if name is not None:
                asyncio.run(fanout._pg(args.pg_admin_url,
                                       f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        print(f"{db}: {args.n * args.orders:,} deliveries per drain, median of {args.repeat}: "
              f"CPU {r['cpu_us']:.0f} us / delivery, wall {r['wall_us']:.0f} us / delivery")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
