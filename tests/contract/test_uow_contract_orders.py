"""The unit of work's contract, part 2: manager orders, child orders (compare-and-set, positions,
dead letters, paging) and fills, on the fake, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import (
    T0,
    Db,
    at,
    child,
    mo_row,
    seed_children,
    seed_world,
)
from vanta.application.ports.delivery import ChildMove
from vanta.application.ports.records_orders import (
    ChildOrderRecord,
    FillRecord,
    ManagerOrderRecord,
)
from vanta.domain.orders import ChildOrderState, ManagerOrderState, Side, TimeInForce

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)


async def test_manager_order_round_trip_scoping_and_snapshot_left_out(backend: Db) -> None:
    await seed_world(backend)
    await backend.run(lambda u: u.manager_orders.add(mo_row("tnt_a", "VA", "MO1",
                                                            qty="10.500")))
    row = await backend.read(lambda u: u.manager_orders.get("tnt_a", "MO1"))
    assert type(row) is ManagerOrderRecord and type(row.side) is Side
    assert type(row.state) is ManagerOrderState and type(row.tif) is TimeInForce
    assert (row.qty, str(row.qty), row.closes_position) \
        == (Decimal("10.5"), "10.5", False)
    assert row.meta == {"note": "x"} and row.snapshot == {"followers": [1, 2]}
    assert await backend.read(lambda u: u.manager_orders.get("tnt_b", "MO1")) is None
    assert (await backend.read(lambda u: u.manager_orders.get_unscoped("MO1"))).mo_id \
        == "MO1"
    many = await backend.read(lambda u: u.manager_orders.get_many_unscoped(["MO1", "nope"]))
    assert list(many) == ["MO1"] and many["MO1"].snapshot is None
    assert many["MO1"].meta == {"note": "x"}


async def test_manager_order_list_filters_order_and_keyset_paging(backend: Db) -> None:
    await seed_world(backend)
    for mo, created, vault, tenant in (("M3", 10, "VA", "tnt_a"), ("M1", 10, "VA", "tnt_a"),
                                       ("M2", 5, "VA", "tnt_a"), ("M4", 20, "VA", "tnt_a"),
                                       ("M5", 1, "VB", "tnt_b")):
        await backend.run(lambda u, m=mo, c=created, v=vault, t=tenant:
                          u.manager_orders.add(mo_row(t, v, m, created=c)))

    async def ids(**kw: Any) -> list[str]:
        rows = await backend.read(lambda u: u.manager_orders.list("tnt_a", **kw))
        return [r.mo_id for r in rows]
    assert await ids(since=None, limit=10) == ["M2", "M1", "M3", "M4"]
    assert await ids(since=at(5), limit=10) == ["M1", "M3", "M4"]  # since is exclusive
    assert await ids(since=None, limit=2, after=(at(10), "M1")) == ["M3", "M4"]
    assert await ids(since=None, limit=10, vault_id="VB") == []
    assert await ids(since=None, limit=10, vault_ids=[]) == []
    assert await ids(since=None, limit=1, vault_ids=["VA"]) == ["M2"]
    # without the snapshot (lists of big orders): the same rows, the rest of each intact
    full = await backend.read(lambda u: u.manager_orders.list("tnt_a", None, 10))
    lean = await backend.read(lambda u: u.manager_orders.list("tnt_a", None, 10,
                                                              with_snapshot=False))
    assert [r.mo_id for r in lean] == [r.mo_id for r in full]
    assert full[0].snapshot == {"followers": [1, 2]} and {r.snapshot for r in lean} == {None}
    assert [(r.meta, r.qty, r.state) for r in lean] == [(r.meta, r.qty, r.state) for r in full]


async def test_net_position_and_holdings_ignore_syncs(backend: Db) -> None:
    await seed_world(backend)
    for mo, side, qty, source, px, created in (
            ("M1", "buy", "10", "manager", "100", 1), ("M2", "sell", "3.5", "manager", None, 2),
            ("M3", "buy", "99", "sync", "1", 3), ("M4", "buy", "2", "manager", "0", 4)):
        await backend.run(lambda u, m=mo, s=side, q=qty, src=source, p=px, c=created:
                          u.manager_orders.add(mo_row("tnt_a", "VA", m, side=s, qty=q,
                                                      source=src, ref_price=p, created=c)))
    await backend.run(lambda u: u.manager_orders.add(
        mo_row("tnt_a", "VA", "M5", symbol="MSFT", side="sell", qty="1", created=5)))
    assert await backend.read(lambda u: u.manager_orders.net_position("VA", "AAPL")) \
        == Decimal("8.5")
    # a zero or missing reference price keeps the last known one; short books are left out
    assert await backend.read(lambda u: u.manager_orders.holdings("VA")) \
        == {"AAPL": (Decimal("8.5"), "paper", Decimal("100"))}


async def test_reopen_only_moves_a_completed_order(backend: Db) -> None:
    await seed_world(backend)
    await backend.run(lambda u: u.manager_orders.add(mo_row("tnt_a", "VA", "M1",
                                                            state="rejected")))
    await backend.run(lambda u: u.manager_orders.reopen("M1"))
    assert (await backend.read(lambda u: u.manager_orders.get_unscoped("M1"))).state \
        == "rejected"
    await backend.run(lambda u: u.manager_orders.set_state("M1", "completed"))
    await backend.run(lambda u: u.manager_orders.reopen("M1"))
    assert (await backend.read(lambda u: u.manager_orders.get_unscoped("M1"))).state \
        == "expanded"


async def test_children_are_stored_with_their_defaults_and_sizing(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend)
    row = await backend.read(lambda u: u.child_orders.get("tnt_a", "fo1"))
    # a typed record from every backend, enums where the domain has them
    assert type(row) is ChildOrderRecord
    assert (row.side, row.state) == (Side.BUY, ChildOrderState.PENDING)
    assert {k: getattr(row, k) for k in ("mo_id", "follower_id", "vault_id", "side", "state",
                                         "dispatch_attempts", "filled_qty", "avg_fill_price",
                                         "broker_order_ref", "created_at", "audit")} \
        == {"mo_id": "MO1", "follower_id": "FA1", "vault_id": "VA", "side": "buy",
            "state": "pending", "dispatch_attempts": 0, "filled_qty": Decimal(0),
            "avg_fill_price": None, "broker_order_ref": None, "created_at": T0,
            "audit": {"sizing": {"rule": "fixed"}}}
    assert await backend.read(lambda u: u.child_orders.get("tnt_b", "fo1")) is None
    many = await backend.read(lambda u: u.child_orders.get_many_unscoped(["fo1", "fo2"]))
    assert set(many) == {"fo1", "fo2"} and many["fo1"].audit is None


async def test_compare_and_set_moves_a_child_once(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend)
    assert await backend.run(lambda u: u.child_orders.update(
        "fo1", expect_state="pending", state="sent", updated_at=at(1))) is True
    assert await backend.run(lambda u: u.child_orders.update(
        "fo1", expect_state="pending", state="cancelled")) is False
    assert (await backend.read(lambda u: u.child_orders.get_unscoped("fo1"))).state == "sent"
    assert await backend.run(lambda u: u.child_orders.update(
        "nope", expect_state="pending", state="sent")) is False


async def test_update_many_reports_the_moved_children_and_counts_attempts(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend, {"fo3": ChildOrderState.ACK})
    moved = await backend.run(lambda u: u.child_orders.update_many(
        ["fo1", "fo2", "fo3"], expect_state="pending", count_attempt=True, state="sent"))
    assert moved == {"fo1": 1, "fo2": 1}
    moved = await backend.run(lambda u: u.child_orders.update_many(
        ["fo1", "fo2"], expect_state="sent", count_attempt=True, state="retry",
        last_error="503"))
    assert moved == {"fo1": 2, "fo2": 2}
    moved = await backend.run(lambda u: u.child_orders.update_many(
        ["fo1"], expect_state="retry", state="sent"))
    assert moved == {"fo1": 2}
    assert await backend.run(lambda u: u.child_orders.update_many(
        [], expect_state="retry", state="sent")) == {}
    row = await backend.read(lambda u: u.child_orders.get_unscoped("fo2"))
    assert (row.state, row.last_error, row.dispatch_attempts) == ("retry", "503", 2)


async def test_move_many_sets_each_child_its_own_values_and_skips_moved_ones(
        backend: Db) -> None:
    await seed_world(backend)
    # fo4 was already settled by another worker: it must be reported, not overwritten
    await seed_children(backend, {"fo1": ChildOrderState.SENT, "fo2": ChildOrderState.SENT,
                                  "fo3": ChildOrderState.SENT, "fo4": ChildOrderState.ACK})
    moved = await backend.run(lambda u: u.child_orders.move_many([
        ChildMove("fo1", "ack", None, "BRK-1"),
        ChildMove("fo2", "retry", "HTTP 503"),
        ChildMove("fo3", "dlq", "HTTP 500", None, at(5)),
        ChildMove("fo4", "dlq", "HTTP 500", None, at(5)),
        ChildMove("nope", "ack", None)], expect_state="sent", updated_at=at(6)))
    assert moved == {"fo1", "fo2", "fo3"}
    rows = {f: await backend.read(lambda u, f=f: u.child_orders.get_unscoped(f))
            for f in ("fo1", "fo2", "fo3", "fo4")}
    assert [(r.state, r.last_error, r.broker_order_ref, r.dead_lettered_at, r.updated_at)
            for r in rows.values()] == [
        ("ack", None, "BRK-1", None, at(6)), ("retry", "HTTP 503", None, None, at(6)),
        ("dlq", "HTTP 500", None, at(5), at(6)), ("ack", None, None, None, T0)]
    # a None leaves the column as it was; a child not in the expected state never moves
    assert await backend.run(lambda u: u.child_orders.move_many(
        [ChildMove("fo2", "sent", None), ChildMove("fo1", "dlq", "late")],
        expect_state="retry", updated_at=at(7))) == {"fo2"}
    fo1 = await backend.read(lambda u: u.child_orders.get_unscoped("fo1"))
    assert (fo1.state, fo1.broker_order_ref) == ("ack", "BRK-1")
    assert await backend.run(lambda u: u.child_orders.move_many(
        [], expect_state="sent", updated_at=at(7))) == set()


async def test_positions_count_only_live_states_exactly(backend: Db) -> None:
    await seed_world(backend)

    async def go(u: Any) -> None:
        await u.manager_orders.add(mo_row("tnt_a", "VA", "MO1"))
        await u.child_orders.add_many([
            child("MO1", "FA1", "a", qty="1.1"),
            child("MO1", "FA1", "b", qty="0.2", side=Side.SELL, state=ChildOrderState.ACK),
            child("MO1", "FA1", "c", qty="50", state=ChildOrderState.FAILED),
            child("MO1", "FA1", "d", qty="7", state=ChildOrderState.SKIPPED),
            child("MO1", "FA2", "e", qty="3", state=ChildOrderState.SHADOW),
            child("MO1", "FA2", "f", qty="3", symbol="MSFT")],
            tenant_id="tnt_a", vault_id="VA", now=T0)
    await backend.run(go)
    got = await backend.read(lambda u: u.child_orders.positions(["FA1", "FA2"], ["AAPL"]))
    assert got == {("FA1", "AAPL"): Decimal("0.9"), ("FA2", "AAPL"): Decimal("3")}
    assert await backend.read(lambda u: u.child_orders.positions([], ["AAPL"])) == {}


async def test_child_list_filters_and_paging(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend)
    await backend.run(lambda u: u.manager_orders.add(mo_row("tnt_a", "VA", "MO2")))
    await backend.run(lambda u: u.child_orders.add_many(
        [child("MO2", "FA1", "fo0")], tenant_id="tnt_a", vault_id="VA", now=at(10)))

    async def ids(tenant: str = "tnt_a", **kw: Any) -> list[str]:
        base = {"follower_id": None, "mo_id": None, "since": None, "limit": 10}
        rows = await backend.read(lambda u: u.child_orders.list(tenant, **{**base, **kw}))
        return [r.fo_id for r in rows]
    assert await ids() == ["fo1", "fo2", "fo3", "fo4", "fo0"]
    assert await ids(follower_id="FA1") == ["fo1", "fo3", "fo0"]
    assert await ids(mo_id="MO2") == ["fo0"]
    assert await ids(since=T0) == ["fo0"]
    assert await ids(limit=2, after=(T0, "fo2")) == ["fo3", "fo4"]
    assert await ids(vault_ids=["VB"]) == []
    assert await ids("tnt_b") == []


async def test_orders_with_open_children_and_awaiting_fills(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend, {"fo1": ChildOrderState.ACK, "fo2": ChildOrderState.ACK,
                                  "fo3": ChildOrderState.CONFIRMED})
    assert await backend.read(lambda u: u.child_orders.with_open_children(
        ["MO1", "MOX"], ["pending", "ack"])) == {"MO1"}
    assert await backend.read(lambda u: u.child_orders.with_open_children(
        ["MO1"], ["sent"])) == set()
    await backend.run(lambda u: u.child_orders.update("fo2", expect_state="ack",
                                                      broker_order_ref="B2", updated_at=at(5)))
    await backend.run(lambda u: u.child_orders.update("fo1", expect_state="ack",
                                                      broker_order_ref="B1", updated_at=at(9)))
    rows = await backend.read(lambda u: u.child_orders.awaiting_fills(10))
    assert [r.fo_id for r in rows] == ["fo2", "fo1"]
    assert len(await backend.read(lambda u: u.child_orders.awaiting_fills(1))) == 1


async def test_dead_letters_in_order_narrowed_and_scoped(backend: Db) -> None:
    await seed_world(backend)
    dlq = ChildOrderState.DLQ
    await seed_children(backend, {"fo1": dlq, "fo2": dlq, "fo3": dlq})
    for fo, secs in (("fo1", 30), ("fo2", 10), ("fo3", 20)):
        await backend.run(lambda u, f=fo, s=secs: u.child_orders.update(
            f, expect_state="dlq", dead_lettered_at=at(s)))

    async def ids(tenant: str = "tnt_a", **kw: Any) -> list[str]:
        base: dict[str, Any] = {"since": None, "limit": 10}
        rows = await backend.read(lambda u: u.child_orders.dead_letters(tenant, **{**base,
                                                                                  **kw}))
        return [r.fo_id for r in rows]
    assert await ids() == ["fo2", "fo3", "fo1"]
    assert await ids(since=at(20)) == ["fo3", "fo1"]  # since is inclusive here
    assert await ids(limit=1) == ["fo2"]
    assert await ids(follower_id="FA1") == ["fo3", "fo1"]
    assert await ids(vault_ids=["VB"]) == []
    assert await ids("tnt_b") == []


async def test_fills_are_counted_once_per_trade_id(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend)

    def fill(trade: str, fo: str, secs: float) -> dict[str, Any]:
        return {"trade_id": trade, "fo_id": fo, "qty": Decimal("1.50"), "price": Decimal("99"),
                "ts": at(secs), "recorded_at": at(secs) + timedelta(seconds=1)}
    assert await backend.run(lambda u: u.fills.add_if_new(fill("t2", "fo1", 5))) is True
    assert await backend.run(lambda u: u.fills.add_if_new(fill("t1", "fo1", 2))) is True
    assert await backend.run(lambda u: u.fills.add_if_new(fill("t2", "fo1", 5))) is False

    async def twice(u: Any) -> list[bool]:  # a report seen twice in one transaction
        return [await u.fills.add_if_new(fill("t3", "fo2", 1)),
                await u.fills.add_if_new(fill("t3", "fo2", 1))]
    assert await backend.run(twice) == [True, False]
    rows = await backend.read(lambda u: u.fills.for_child("fo1"))
    assert all(type(r) is FillRecord for r in rows)
    assert [(r.trade_id, r.qty) for r in rows] \
        == [("t1", Decimal("1.5")), ("t2", Decimal("1.5"))]
    many = await backend.read(lambda u: u.fills.for_children(["fo1", "fo2", "fo3"]))
    assert {k: [r.trade_id for r in v] for k, v in many.items()} == {
        "fo1": ["t1", "t2"], "fo2": ["t3"]}
