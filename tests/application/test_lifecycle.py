"""Vault creation (limited by the plan) and settings, and unfollowing with positions closed
or kept: exit children through the normal outbox path, exactly once, and nothing new after."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from tests.application.conftest import World
from vanta.application.followers import patch_follower
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.unfollow import PositionChoice, exit_order_id, unfollow
from vanta.application.vaults import add_vault, patch_vault
from vanta.domain.audit import verify_chain
from vanta.domain.errors import Conflict, NotEntitled, NotFound, ValidationFailed
from vanta.domain.ids import manager_order_id


@pytest.fixture
def w(world: World) -> World:
    return world


async def _kids(w: World, follower_id: str) -> list[ChildOrderRecord]:
    async with w.uow() as u:
        return await u.child_orders.list("tnt_a", follower_id=follower_id, mo_id=None,
                                         since=None, limit=1000)


async def _unfollow(w: World, fid: str, choice: str, tenant_id: str = "tnt_a") -> Any:
    return await unfollow(w.uow(), tenant_id=tenant_id, follower_id=fid,
                          positions=PositionChoice(choice), actor="owner", clock=w.clock)


# --- vaults ---------------------------------------------------------------------------------

async def test_a_new_vault_is_stored_with_defaults_and_audited(w: World) -> None:
    v = await add_vault(w.uow(), tenant_id="tnt_a", actor="owner", clock=w.clock,
                        raw={"vault_id": "VNEW", "label": "New", "personas": ["Ares"],
                             "risk_profile": {"style": "aggressive"}})
    assert (v.vault_id, v.label, list(v.personas), v.public) == ("VNEW", "New", ["Ares"],
                                                                   False)
    assert v.risk_profile == {"max_drawdown_pct": 12, "style": "aggressive"}
    assert v.rails == {"fiat": True, "crypto": True}
    async with w.uow() as u:
        events = await u.audit.all()
    created = [e for e in events if e.entity == "vault" and e.entity_id == "VNEW"]
    assert [e.action for e in created] == ["created"]
    assert created[0].actor == "owner" and created[0].payload["after"]["label"] == "New"


async def test_the_plans_vault_count_limits_creation(w: World) -> None:
    # tenant B is on Core (one vault) and already has VB
    with pytest.raises(NotEntitled) as e:
        await add_vault(w.uow(), tenant_id="tnt_b", raw={"label": "second"}, actor="owner")
    assert e.value.code == "vault_limit_reached"
    async with w.uow() as u:
        assert [v.vault_id for v in await u.vaults.list("tnt_b")] == ["VB"]


async def test_an_existing_vault_id_is_a_conflict(w: World) -> None:
    with pytest.raises(Conflict) as e:
        await add_vault(w.uow(), tenant_id="tnt_a", raw={"vault_id": "VA"}, actor="owner")
    assert e.value.code == "vault_exists"


async def test_a_vault_patch_changes_only_what_is_sent_and_audits_before_and_after(
        w: World) -> None:
    v = await patch_vault(w.uow(), tenant_id="tnt_a", vault_id="VA", actor="owner",
                          raw={"public": True, "risk_profile": {"max_drawdown_pct": "7.5"},
                               "rails": {"crypto": False}})
    assert v.public is True and v.label == "A"
    assert v.risk_profile == {"max_drawdown_pct": "7.5", "style": "balanced"}
    assert v.rails == {"fiat": True, "crypto": False}
    async with w.uow() as u:
        events = await u.audit.all()
    upd = [e for e in events if e.entity == "vault" and e.action == "updated"][-1]
    assert upd.payload["before"]["public"] is False and upd.payload["after"]["public"] is True
    assert upd.payload["before"]["rails"] == {"fiat": True, "crypto": True}
    assert upd.payload["changed"] == ["public", "rails", "risk_profile"]
    assert verify_chain(events) is None


@pytest.mark.parametrize("raw,code", [
    ({}, "empty_patch"), ({"personas": ["Zeus"]}, "unknown_persona"),
    ({"risk_profile": {"max_drawdown_pct": 100}}, "invalid_risk_profile"),
    ({"rails": {"fiat": "yes"}}, "invalid_rails"), ({"maintenance": True}, "unknown_field")])
async def test_a_bad_vault_patch_is_refused_and_changes_nothing(w: World, raw: Any,
                                                                code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await patch_vault(w.uow(), tenant_id="tnt_a", vault_id="VA", raw=raw, actor="o")
    assert e.value.code == code
    async with w.uow() as u:
        assert (await u.vaults.get("tnt_a", "VA")).public is False  # type: ignore[union-attr]


async def test_another_tenants_vault_is_not_found(w: World) -> None:
    with pytest.raises(NotFound):
        await patch_vault(w.uow(), tenant_id="tnt_a", vault_id="VB", raw={"public": True},
                          actor="o")


# --- unfollowing ----------------------------------------------------------------------------

async def test_close_creates_one_exit_child_per_open_position_through_the_outbox(
        w: World) -> None:
    f = await w.follower(scale="0.5")
    other = await w.follower(scale="1")
    await w.submit(id="b1", symbol="AAPL", qty="10")
    await w.submit(id="b2", symbol="MSFT", qty="4")
    await w.drain()
    async with w.uow() as u:
        queued = await u.outbox.pending_count("mirror.dispatch")
    done = await _unfollow(w, f, "close")
    assert not done.already and done.follower.paused_reason == "unfollowed"
    exits = [c for e in done.exits for c in e.children]
    assert {(c.symbol, c.side.value, c.qty, c.state.value) for c in exits} == {
        ("AAPL", "sell", Decimal(5), "pending"), ("MSFT", "sell", Decimal(2), "pending")}
    assert {c.follower_id for c in exits} == {f}  # the other follower is not touched
    assert {c.mo_id for c in exits} == {
        manager_order_id("VA", exit_order_id(f, s)) for s in ("AAPL", "MSFT")}
    async with w.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == queued + 2
        held = await u.child_orders.positions([f, other], ["AAPL", "MSFT"])
    assert held[(f, "AAPL")] == 0 and held[(f, "MSFT")] == 0
    assert held[(other, "AAPL")] == 10
    await w.drain()  # delivered like any child: one webhook each
    assert [(await w.child(c.fo_id)).state.value for c in exits] == ["ack", "ack"]


async def test_keep_leaves_positions_and_creates_no_orders(w: World) -> None:
    f = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    before = await _kids(w, f)
    done = await _unfollow(w, f, "keep")
    assert done.exits == () and done.follower.paused_reason == "unfollowed"
    assert len(await _kids(w, f)) == len(before)
    async with w.uow() as u:
        assert (await u.child_orders.positions([f], ["AAPL"]))[(f, "AAPL")] == 10


async def test_an_unfollowed_follower_gets_no_new_children_and_keeps_its_history(
        w: World) -> None:
    f = await w.follower(scale="1")
    stays = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    await _unfollow(w, f, "keep")
    sub = await w.submit(id="b2", qty="10")
    assert sub.expansion is not None
    assert {c.follower_id for c in sub.expansion.children} == {stays}
    assert [c.mo_id for c in await _kids(w, f)] == [manager_order_id("VA", "b1")]
    async with w.uow() as u:
        events = await u.audit.all()
        row = await u.followers.get("tnt_a", f)
    assert row is not None  # the follower itself stays, as history
    gone = [e for e in events if e.entity_id == f and e.action == "unfollowed"]
    assert len(gone) == 1 and gone[0].payload["positions"] == "keep"
    assert verify_chain(events) is None


async def test_a_repeated_unfollow_changes_nothing(w: World) -> None:
    f = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    first = await _unfollow(w, f, "close")
    async with w.uow() as u:
        events = len(await u.audit.all())
        queued = await u.outbox.pending_count("mirror.dispatch")
    again = await _unfollow(w, f, "close")
    assert again.already and again.exits == ()
    assert len(first.exits) == 1
    async with w.uow() as u:
        assert len(await u.audit.all()) == events
        assert await u.outbox.pending_count("mirror.dispatch") == queued


async def test_a_paused_follower_still_closes_its_positions(w: World) -> None:
    f = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    await patch_follower(w.uow(), tenant_id="tnt_a", follower_id=f, raw={"paused": True},
                         actor="o")
    done = await _unfollow(w, f, "close")
    [kid] = [c for e in done.exits for c in e.children]
    assert (kid.state.value, kid.qty) == ("pending", Decimal(10))
    assert done.follower.paused is False  # else the dispatcher would withdraw the exit


async def test_keep_leaves_a_paused_follower_paused(w: World) -> None:
    f = await w.follower(scale="1", paused=True)
    done = await _unfollow(w, f, "keep")
    assert (done.follower.paused, done.follower.paused_reason) == (True, "unfollowed")


async def test_close_with_the_kill_switch_on_is_refused_and_writes_nothing(w: World) -> None:
    f = await w.follower(scale="1", kill_switch=True)
    with pytest.raises(Conflict) as e:
        await _unfollow(w, f, "close")
    assert e.value.code == "kill_switch_on"
    async with w.uow() as u:
        assert (await u.followers.get("tnt_a", f)).paused_reason is None  # type: ignore[union-attr]


async def test_close_in_maintenance_is_refused_and_writes_nothing(w: World) -> None:
    f = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    async with w.uow() as u:
        await u.vaults.set_maintenance("tnt_a", "VA", True)
        await u.commit()
    with pytest.raises(Conflict):
        await _unfollow(w, f, "close")
    async with w.uow() as u:
        assert (await u.followers.get("tnt_a", f)).paused_reason is None  # type: ignore[union-attr]
    assert (await _unfollow(w, f, "keep")).exits == ()  # keeping needs no orders


async def test_an_unfollowed_followers_settings_no_longer_change(w: World) -> None:
    f = await w.follower()
    await _unfollow(w, f, "keep")
    with pytest.raises(Conflict) as e:
        await patch_follower(w.uow(), tenant_id="tnt_a", follower_id=f,
                             raw={"paused": False}, actor="o")
    assert e.value.code == "follower_unfollowed"


async def test_another_tenants_follower_is_not_found(w: World) -> None:
    f = await w.follower(vault_id="VB", tenant_id="tnt_b")
    with pytest.raises(NotFound):
        await _unfollow(w, f, "keep")


async def test_two_concurrent_unfollows_write_once(w: World) -> None:
    f = await w.follower(scale="1")
    await w.submit(id="b1", qty="10")
    a, b = await asyncio.gather(_unfollow(w, f, "close"), _unfollow(w, f, "close"))
    assert sorted([a.already, b.already]) == [False, True]
    async with w.uow() as u:
        events = await u.audit.all()
    assert [e.action for e in events if e.entity_id == f].count("unfollowed") == 1
