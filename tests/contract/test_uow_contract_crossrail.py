"""The unit of work's contract, cross-rail part: venue fee models (compare-and-set on the
version), stablecoin buffers (tenant-scoped upsert) and child legs (plan order, tenant-scoped
look-up, compare-and-set on the state, exact decimals), on the fake, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal as D
from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import T0, Db, at, seed_children, seed_world
from vanta.application.crossrail import put_fee_model
from vanta.application.ports.crossrail import LegRecord, VenueFeeRecord, leg_row
from vanta.domain.legs import Leg, LegState
from vanta.domain.orders import ChildOrderState
from vanta.domain.routing import LegKind
from vanta.domain.venues import DEFAULT_FEE_MODELS

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)


def _fee_row(version: int, taker: str) -> dict[str, object]:
    model = {**DEFAULT_FEE_MODELS["kraken"].to_json(), "taker_bps": taker, "version": version}
    return {"venue": "kraken", "version": version, "model": model, "updated_at": at(version),
            "updated_by": "admin"}


async def test_fee_model_versions_replace_by_compare_and_set(backend: Db) -> None:
    assert await backend.run(lambda u: u.venue_fees.put(_fee_row(1, "30"),
                                                        expect_version=None))
    # an edit made against a stale version is refused and changes nothing
    assert not await backend.run(lambda u: u.venue_fees.put(_fee_row(2, "31"),
                                                            expect_version=5))
    assert await backend.run(lambda u: u.venue_fees.put(_fee_row(2, "32"), expect_version=1))
    rec = await backend.read(lambda u: u.venue_fees.get("kraken"))
    assert type(rec) is VenueFeeRecord and rec.version == 2 and rec.updated_at == at(2)
    assert rec.fees().taker_bps == D(32) and rec.fees().version == 2
    assert [r.venue for r in await backend.read(lambda u: u.venue_fees.list())] == ["kraken"]
    assert await backend.read(lambda u: u.venue_fees.get("binance")) is None


async def test_buffers_upsert_per_tenant_and_entity(backend: Db) -> None:
    await seed_world(backend)
    row = {"tenant_id": "tnt_a", "entity": "vault", "entity_id": "VA",
           "amount": D("1000.000001"), "updated_at": T0}
    await backend.run(lambda u: u.buffers.put(row))
    await backend.run(lambda u: u.buffers.put({**row, "amount": D("250.5")}))
    assert await backend.read(lambda u: u.buffers.get("tnt_a", "vault", "VA")) == D("250.5")
    assert await backend.read(lambda u: u.buffers.get("tnt_b", "vault", "VA")) is None
    assert await backend.read(lambda u: u.buffers.get("tnt_a", "follower", "VA")) is None


def _legs(fo_id: str) -> list[Leg]:
    return [Leg(fo_id, 0, LegKind.CONVERT, "paper", "USDC-USD", "buy", D("21000.123456"),
                LegState.PLANNED),
            Leg(fo_id, 1, LegKind.TRADE, "paper", "BTC-USDC", "buy", D("0.50001"),
                LegState.WAITING, after=0)]


async def test_legs_read_back_exactly_in_plan_order(backend: Db) -> None:
    await seed_world(backend)
    fos = await seed_children(backend)
    ctx = {"price": "40000", "buffer": "1000"}
    rows = [leg_row(g, tenant_id="tnt_a", at=T0, context=ctx if g.after is not None else None)
            for g in reversed(_legs(fos[0]))]
    await backend.run(lambda u: u.legs.add_many(rows))
    await backend.run(lambda u: u.legs.add_many([leg_row(_legs(fos[1])[0], tenant_id="tnt_a",
                                                         at=T0)]))
    got = await backend.read(lambda u: u.legs.for_child(fos[0]))
    assert all(type(r) is LegRecord for r in got)
    assert [r.leg() for r in got] == _legs(fos[0])
    assert got[1].context == ctx and got[0].context is None and got[0].updated_at == T0
    many = await backend.read(lambda u: u.legs.for_children([fos[0], fos[1], "nope"]))
    assert {k: len(v) for k, v in many.items()} == {fos[0]: 2, fos[1]: 1}
    assert await backend.read(lambda u: u.legs.get("tnt_b", f"{fos[0]}.0")) is None
    one = await backend.read(lambda u: u.legs.get("tnt_a", f"{fos[0]}.1"))
    assert one is not None and one.amount == D("0.50001")


async def test_legs_by_follower_leave_out_what_an_unexecuted_child_never_ran(
        backend: Db) -> None:
    await seed_world(backend)
    # fo1, fo3: FA1 (fo3 dead-lettered); fo2, fo4: FA2 (fo4 withdrawn, but its conversion
    # had filled in part)
    fos = await seed_children(backend, {"fo3": ChildOrderState.DLQ,
                                        "fo4": ChildOrderState.CANCELLED})
    part = replace(_legs("fo4")[0], state=LegState.FILLED, filled=D(5))
    rows = [leg_row(g, tenant_id="tnt_a", at=T0)
            for g in (*_legs("fo1"), *_legs("fo2"), *_legs("fo3"), part, _legs("fo4")[1])]
    await backend.run(lambda u: u.legs.add_many(rows))
    got = await backend.read(lambda u: u.legs.for_followers("tnt_a", ["FA1", "FA2", "FB1"]))
    assert {f: [g.leg_id for g in legs] for f, legs in got.items()} == {
        "FA1": ["fo1.0", "fo1.1"], "FA2": ["fo2.0", "fo2.1", "fo4.0"]}
    assert all(type(g) is LegRecord for legs in got.values() for g in legs)
    assert got["FA2"][2].filled == D(5)
    assert await backend.read(lambda u: u.legs.for_followers("tnt_b", ["FA1"])) == {}
    assert fos == ["fo1", "fo2", "fo3", "fo4"]


async def test_leg_updates_compare_and_set_on_the_state(backend: Db) -> None:
    await seed_world(backend)
    fos = await seed_children(backend)
    await backend.run(lambda u: u.legs.add_many([leg_row(g, tenant_id="tnt_a", at=T0)
                                                 for g in _legs(fos[0])]))
    leg_id = f"{fos[0]}.0"
    assert await backend.run(lambda u: u.legs.update(
        leg_id, expect_state="planned", state="sent", attempts=1, updated_at=at(5)))
    assert not await backend.run(lambda u: u.legs.update(
        leg_id, expect_state="planned", state="cancelled", updated_at=at(6)))
    rec = await backend.read(lambda u: u.legs.get("tnt_a", leg_id))
    assert rec is not None and (rec.state, rec.attempts, rec.updated_at) == ("sent", 1, at(5))


class _Racing:
    """A unit of work whose first fee-model read waits for the other writer's, so both
    writers see "no model stored yet" before either writes: the race on the first PUT."""

    def __init__(self, inner: Any, barrier: asyncio.Barrier | None) -> None:
        self._inner, self._barrier, self._waited = inner, barrier, False

    async def __aenter__(self) -> Any:
        u = await self._inner.__aenter__()
        get = u.venue_fees.get

        async def racing_get(venue: str) -> Any:
            got = await get(venue)
            if not self._waited and self._barrier is not None:
                self._waited = True
                await self._barrier.wait()
            return got
        u.venue_fees.get = racing_get
        return u

    async def __aexit__(self, *exc: Any) -> None:
        await self._inner.__aexit__(*exc)

    def __getattr__(self, name: str) -> Any:  # the use case reads the repositories here
        return getattr(self._inner, name)


async def test_two_first_fee_model_edits_racing_both_land_in_order(backend: Db) -> None:
    await seed_world(backend)
    # SQLite takes its write lock at BEGIN (IMMEDIATE): the writers queue there, so their
    # reads cannot interleave; they still run at once and must both land
    barrier = None if backend.name == "sqlite" else asyncio.Barrier(2)
    raw = {k: v for k, v in DEFAULT_FEE_MODELS["kraken"].to_json().items()
           if k not in ("venue", "version")}

    async def put(taker: str) -> int:
        model = await put_fee_model(_Racing(backend.uow(), barrier),  # type: ignore[arg-type]
                                    venue="kraken", raw={**raw, "taker_bps": taker},
                                    actor="admin", tenant_id="tnt_a", clock=lambda: T0)
        return model.version

    versions = await asyncio.wait_for(asyncio.gather(put("30"), put("31")), 30)
    assert sorted(versions) == [1, 2]  # neither writer failed; the loser read again
    rec = await backend.read(lambda u: u.venue_fees.get("kraken"))
    assert rec.version == 2
    events = await backend.read(lambda u: u.audit.for_entities("tnt_a", ["kraken"]))
    assert [(e.payload["version"], e.payload["previous"]["version"]) for e in events] == [
        (1, 0), (2, 1)]
