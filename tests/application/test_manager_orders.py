"""Submitting a manager order: children per follower, skips with reasons, the kill switch,
idempotent re-submission, maintenance, and nothing half-written when a step fails."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from tests.application.conftest import World
from vanta.application.manager_orders import replay_expansion, sync_follower
from vanta.application.overlays import apply_overlay
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.domain.audit import verify_chain
from vanta.domain.errors import Conflict, NotFound


async def _children(w: World, mo_id: str) -> list[ChildOrderRecord]:
    async with w.uow() as u:
        return await u.child_orders.list("tnt_a", follower_id=None, mo_id=mo_id, since=None,
                                         limit=100)


async def test_an_order_becomes_one_child_per_follower_with_an_outbox_row_each(w: World
                                                                              ) -> None:
    f1 = await w.follower(scale="0.5")
    f2 = await w.follower(scale="2")
    sub = await w.submit(id="o-1", qty="10")
    assert sub.created and sub.state == "expanded"
    kids = {c.follower_id: c for c in await _children(w, sub.order.mo_id)}
    assert {f: (k.qty, k.state) for f, k in kids.items()} \
        == {f1: (Decimal(5), "pending"), f2: (Decimal(20), "pending")}
    async with w.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == 2
        stored = await u.manager_orders.get("tnt_a", sub.order.mo_id)
    assert stored is not None and stored.client_order_id == "o-1"
    assert {f["follower_id"] for f in (stored.snapshot or {})["followers"]} == {f1, f2}


async def test_the_order_and_its_children_are_audited_in_one_chain(w: World) -> None:
    await w.follower()
    sub = await w.submit()
    async with w.uow() as u:
        events = await u.audit.all()
    assert verify_chain(events) is None
    actions = [(e.entity, e.action) for e in events if e.entity in ("manager_order",
                                                                    "follower_order")]
    assert actions == [("manager_order", "received"), ("follower_order", "created:pending")]
    assert events[-2].entity_id == sub.order.mo_id


async def test_skipped_children_carry_their_reason_and_are_not_queued(w: World) -> None:
    killed = await w.follower(kill_switch=True)
    paused = await w.follower(paused=True)
    shadow = await w.follower(mode="shadow")
    tiny = await w.follower(scale="0.01")  # 10 x 0.01 = 0.1 share: below one whole share
    live = await w.follower()
    sub = await w.submit(qty="10")
    kids = {c.follower_id: c for c in await _children(w, sub.order.mo_id)}
    assert {f: (kids[f].state, kids[f].skip_reason) for f in kids} == {
        killed: ("skipped", "kill_switch"), paused: ("skipped", "paused"),
        shadow: ("shadow", "shadow"), tiny: ("skipped", "below_minimum"),
        live: ("pending", None)}
    async with w.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == 1


async def test_an_order_nobody_can_take_is_completed_at_once(w: World) -> None:
    await w.follower(kill_switch=True)
    sub = await w.submit()
    assert sub.state == "completed" and sub.expansion is not None
    assert sub.expansion.dispatchable == ()


async def test_resubmitting_the_same_order_returns_the_first_and_writes_nothing(w: World
                                                                               ) -> None:
    await w.follower()
    first = await w.submit(id="same")
    async with w.uow() as u:
        before = len(await u.audit.all())
    again = await w.submit(id="same")
    assert (again.created, again.expansion, again.state) == (False, None, "expanded")
    assert again.order.mo_id == first.order.mo_id
    async with w.uow() as u:
        assert len(await u.audit.all()) == before
        assert await u.outbox.pending_count("mirror.dispatch") == 1


async def test_the_same_id_for_a_different_order_is_a_conflict(w: World) -> None:
    await w.submit(id="dup", qty="10")
    with pytest.raises(Conflict) as e:
        await w.submit(id="dup", qty="11")
    assert e.value.code == "order_id_conflict"


async def test_an_unknown_or_foreign_vault_is_not_found(w: World) -> None:
    with pytest.raises(NotFound):
        await w.submit(vault_id="nope")
    with pytest.raises(NotFound):  # VB belongs to tenant B
        await w.submit(vault_id="VB")
    async with w.uow() as u:
        assert await u.manager_orders.list("tnt_a", None, 10) == []


async def test_a_vault_in_maintenance_refuses_orders(w: World) -> None:
    await apply_overlay(w.uow(), tenant_id="tnt_a", vault_id="VA",
                        raw={"maintenance": {"enabled": True}}, actor="ops", clock=w.clock)
    with pytest.raises(Conflict) as e:
        await w.submit()
    assert e.value.code == "vault_in_maintenance"


async def test_a_failure_mid_expansion_leaves_nothing_behind(w: World,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    await w.follower()
    from tests.fakes.memory_repos_delivery import MemAudit

    async def broken(self: Any, events: Any) -> None:
        raise RuntimeError("disk full")
    monkeypatch.setattr(MemAudit, "append_many", broken)
    with pytest.raises(RuntimeError):
        await w.submit(id="half")
    monkeypatch.undo()
    async with w.uow() as u:
        assert await u.manager_orders.list("tnt_a", None, 10) == []
        assert await u.outbox.pending_count("mirror.dispatch") == 0
    assert (await w.submit(id="half")).created  # and the order can be sent again


async def test_positions_carry_over_into_the_next_order(w: World) -> None:
    f = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    sell = await w.submit(id="s1", side="sell", qty="4", closes_position=False)
    kids = await _children(w, sell.order.mo_id)
    assert [(k.follower_id, k.side, k.qty) for k in kids] \
        == [(f, "sell", Decimal(4))]


async def test_replay_reproduces_the_stored_children(w: World) -> None:
    await w.follower(scale="0.5")
    await w.follower(scale="3", kill_switch=True)
    sub = await w.submit(qty="7")
    replayed = await replay_expansion(w.uow(), tenant_id="tnt_a", mo_id=sub.order.mo_id)
    stored = {c.fo_id: (c.qty, c.state) for c in await _children(w, sub.order.mo_id)}
    assert {c.fo_id: (c.qty, c.state.value) for c in replayed.children} == stored
    with pytest.raises(NotFound):
        await replay_expansion(w.uow(), tenant_id="tnt_b", mo_id=sub.order.mo_id)


async def test_a_new_follower_is_synced_to_the_managers_holdings(w: World) -> None:
    await w.submit(id="b1", qty="10", symbol="AAPL")
    await w.submit(id="b2", qty="4", symbol="MSFT", ref_price="50")
    late = await w.follower(scale="0.5")
    expansions = await sync_follower(w.uow(), tenant_id="tnt_a", vault_id="VA",
                                     follower_id=late, actor="test", clock=w.clock)
    got = sorted((c.symbol, c.qty) for e in expansions for c in e.children)
    assert got == [("AAPL", Decimal(5)), ("MSFT", Decimal(2))]
    # syncing twice sizes nothing new, and syncs do not count as the manager's own position
    assert await sync_follower(w.uow(), tenant_id="tnt_a", vault_id="VA",
                               follower_id=late, actor="test", clock=w.clock) == []
    async with w.uow() as u:
        assert await u.manager_orders.net_position("VA", "AAPL") == Decimal(10)


@pytest.fixture
def w(world: World) -> World:
    return world
