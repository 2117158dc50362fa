"""Reconciliation's repository on every backend: thresholds (set, replace, remove, scoped to
the tenant), newest position report per follower, the manager's traded symbols without syncs
or fix-ups, the vault's open book, and runs by tenant."""

from __future__ import annotations

from decimal import Decimal

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import (
    Db,
    at,
    child,
    mo_row,
    seed_world,
)
from vanta.domain.orders import ChildOrderState, Side

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)


async def test_thresholds_are_set_replaced_removed_and_scoped(backend: Db) -> None:
    await seed_world(backend)

    def put(follower: str, bps: int | None, tenant: str = "tnt_a"):
        return lambda u: u.reconciliations.set_threshold(
            tenant_id=tenant, vault_id="VA", follower_id=follower, threshold_bps=bps,
            now=at(1))
    await backend.run(put("", 50))
    await backend.run(put("FA1", 20))
    await backend.run(put("", 75))
    got = await backend.read(lambda u: u.reconciliations.thresholds("tnt_a", "VA"))
    assert got == {"": 75, "FA1": 20}
    await backend.run(put("FA1", None))
    assert await backend.read(lambda u: u.reconciliations.thresholds("tnt_a", "VA")) == \
        {"": 75}
    assert await backend.read(lambda u: u.reconciliations.thresholds("tnt_b", "VA")) == {}


async def test_the_newest_report_per_follower_wins(backend: Db) -> None:
    await seed_world(backend)

    def report(fid: str, second: float, qty: str):
        return lambda u: u.reconciliations.add_position_report({
            "tenant_id": "tnt_a", "follower_id": fid, "positions": {"AAPL": qty},
            "as_of": at(second), "received_at": at(100)})
    for fid, second, qty in (("FA1", 5, "2"), ("FA1", 9, "3"), ("FA1", 7, "1"),
                             ("FA2", 1, "-4")):
        await backend.run(report(fid, second, qty))
    got = await backend.read(lambda u: u.reconciliations.latest_reports(["FA1", "FA2", "X"]))
    assert {k: (v.positions, v.as_of) for k, v in got.items()} == \
        {"FA1": ({"AAPL": "3"}, at(9)), "FA2": ({"AAPL": "-4"}, at(1))}


async def test_traded_symbols_and_open_book(backend: Db) -> None:
    await seed_world(backend)

    async def go(u) -> None:
        await u.manager_orders.add(mo_row("tnt_a", "VA", "M1", qty="10", ref_price="100"))
        await u.manager_orders.add(mo_row("tnt_a", "VA", "M2", created=1, side="sell",
                                          qty="10", ref_price=None))
        await u.manager_orders.add(mo_row("tnt_a", "VA", "M3", created=2, symbol="MSFT",
                                          qty="4", ref_price="300"))
        for i, src in enumerate(("sync", "reconcile")):
            await u.manager_orders.add(mo_row("tnt_a", "VA", f"S{i}", created=3, qty="99",
                                              source=src, symbol="MSFT"))
        states = [ChildOrderState.PENDING, ChildOrderState.ACK, ChildOrderState.DLQ,
                  ChildOrderState.CONFIRMED, ChildOrderState.SKIPPED, ChildOrderState.SHADOW]
        await u.child_orders.add_many(
            [child("M1", "FA1", f"fo{i}", state=s, side=Side.BUY)
             for i, s in enumerate(states)], tenant_id="tnt_a", vault_id="VA", now=at(4))
    await backend.run(go)
    symbols = await backend.read(lambda u: u.reconciliations.vault_symbols("VA"))
    assert symbols == {"AAPL": (Decimal(0), "paper", Decimal(100)),
                       "MSFT": (Decimal(4), "paper", Decimal(300))}
    assert await backend.read(lambda u: u.manager_orders.net_position("VA", "MSFT")) == 4
    book = await backend.read(lambda u: u.reconciliations.open_book("VA"))
    assert sorted(c.fo_id for c in book) == ["fo0", "fo1", "fo3", "fo5"]
    assert all(c.audit is None for c in book)
    assert await backend.read(lambda u: u.reconciliations.open_book("VB")) == []


async def test_runs_are_read_back_by_their_tenant_only(backend: Db) -> None:
    await seed_world(backend)
    report = {"id": "rc_1", "fixups": [{"qty": "5"}], "summary": {"fixups": 1}}
    await backend.run(lambda u: u.reconciliations.add_run({
        "run_id": "rc_1", "tenant_id": "tnt_a", "vault_id": "VA", "dry_run": False,
        "actor": "ops", "created_at": at(3), "report": report}))
    run = await backend.read(lambda u: u.reconciliations.get_run("tnt_a", "rc_1"))
    assert (run.vault_id, run.dry_run, run.actor, run.created_at, dict(run.report)) == \
        ("VA", False, "ops", at(3), report)
    assert await backend.read(lambda u: u.reconciliations.get_run("tnt_b", "rc_1")) is None


async def test_every_vault_of_every_tenant_is_listed(backend: Db) -> None:
    await seed_world(backend)
    assert await backend.read(lambda u: u.reconciliations.all_vaults()) == \
        [("tnt_a", "VA"), ("tnt_b", "VB")]
