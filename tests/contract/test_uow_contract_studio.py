"""The unit of work's contract, Replay Studio part: the window of a vault's orders, streaming
them in recorded order a chunk at a time (sync orders and other tenants left out), a
follower's recorded children, stored runs; on the fake, SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import CLOCK_AT, Db, at, child, mo_row, seed_world
from vanta.application.ports.studio import StudioRunRecord
from vanta.domain.orders import ChildOrderState

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)

SNAP = {"price": "101.5", "manager_nav": "50000", "manager_position": "20",
        "overlay": {"flip": False}, "sizing_version": 2, "followers": [{"big": "x"}],
        "positions": {"FA1": "3"}, "instrument": {"symbol": "AAPL", "venue": "paper",
                                                  "lot_step": "1", "min_qty": "1",
                                                  "min_notional": "0",
                                                  "fractional_step": None}}


async def _seed_orders(db: Db) -> None:
    await seed_world(db)

    async def go(u: Any) -> None:
        # created out of id order, two at the same instant: the key is (created_at, mo_id)
        for mo, secs in (("m3", 30), ("m1", 10), ("m2b", 20), ("m2a", 20), ("m4", 40)):
            await u.manager_orders.add({**mo_row("tnt_a", "VA", mo, created=secs),
                                        "snapshot": SNAP})
        await u.manager_orders.add(mo_row("tnt_a", "VA", "sync1", created=25, source="sync"))
        await u.manager_orders.add(mo_row("tnt_b", "VB", "mb", created=15))
    await db.run(go)


async def test_orders_stream_in_recorded_order_by_chunks(backend: Db) -> None:
    await _seed_orders(backend)

    async def stream(u: Any) -> list[list[str]]:
        n, first, last = await u.studio.window("tnt_a", "VA", at(15), at(35))
        assert n == 3
        return [[r.mo_id for r in chunk] async for chunk in
                u.studio.orders("tnt_a", "VA", first, last, 2)]
    assert await backend.read(stream) == [["m2a", "m2b"], ["m3"]]

    async def whole(u: Any) -> list[Any]:
        n, first, last = await u.studio.window("tnt_a", "VA", None, None)
        assert n == 5
        return [r async for chunk in u.studio.orders("tnt_a", "VA", first, last, 10)
                for r in chunk]
    rows = await backend.read(whole)
    assert [r.mo_id for r in rows] == ["m1", "m2a", "m2b", "m3", "m4"]
    r = rows[0]
    assert (r.qty, r.side, r.ref_price, r.created_at) == (Decimal(10), "buy", Decimal(100),
                                                          at(10))
    # only the vault-wide part of the snapshot is read
    assert dict(r.snapshot) == {k: v for k, v in SNAP.items()
                                if k not in ("followers", "positions")}


async def test_last_orders_and_empty_windows(backend: Db) -> None:
    await _seed_orders(backend)
    assert await backend.read(lambda u: u.studio.last_orders("tnt_a", "VA", 2)) \
        == (2, (at(30), "m3"), (at(40), "m4"))
    assert await backend.read(lambda u: u.studio.last_orders("tnt_a", "VA", 99)) \
        == (5, (at(10), "m1"), (at(40), "m4"))
    # another tenant's vault id names nothing
    assert await backend.read(lambda u: u.studio.last_orders("tnt_b", "VA", 5)) \
        == (0, None, None)
    assert await backend.read(lambda u: u.studio.window("tnt_a", "VA", at(41), None)) \
        == (0, None, None)


async def test_children_of_one_follower(backend: Db) -> None:
    await _seed_orders(backend)

    async def go(u: Any) -> None:
        await u.child_orders.add_many(
            [child("m1", "FA1", "fo1", qty="4"), child("m1", "FA2", "fo2"),
             child("m3", "FA1", "fo3", state=ChildOrderState.SKIPPED, qty="0")],
            tenant_id="tnt_a", vault_id="VA", now=at(50))
    await backend.run(go)
    got = await backend.read(lambda u: u.studio.children("tnt_a", "FA1", ["m1", "m3", "m4"]))
    assert sorted(got) == ["m1", "m3"]
    assert (got["m1"].qty, got["m1"].state, got["m1"].filled_qty) == (Decimal(4), "pending",
                                                                     Decimal(0))
    assert got["m3"].state == "skipped"
    assert await backend.read(lambda u: u.studio.children("tnt_b", "FA1", ["m1"])) == {}


async def test_runs_are_stored_per_tenant(backend: Db) -> None:
    await seed_world(backend)
    row = {"run_id": "run1", "tenant_id": "tnt_a", "vault_id": "VA", "follower_id": None,
           "actor": "u1", "created_at": CLOCK_AT, "request": {"configs": [{"scale": "0.5"}]},
           "engine_version": "studio-1", "output_sha256": "ab" * 32, "output": '{"a":1}'}
    await backend.run(lambda u: u.studio.add_run(row))
    got = await backend.read(lambda u: u.studio.get_run("tnt_a", "run1"))
    assert got == StudioRunRecord(**row)
    assert await backend.read(lambda u: u.studio.get_run("tnt_b", "run1")) is None
