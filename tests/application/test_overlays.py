"""Vault overlays: the plan decides who may apply them, sizing honours them while they run,
and the scheduler reverts them once, when they expire."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.application.conftest import World
from vanta.application.overlays import apply_overlay, revert_expired
from vanta.domain.errors import NotEntitled, NotFound, ValidationFailed


async def _apply(w: World, raw: dict, tenant: str = "tnt_a", vault: str = "VA") -> dict:
    return await apply_overlay(w.uow(), tenant_id=tenant, vault_id=vault, raw=raw,
                               actor="ops", clock=w.clock)


async def test_a_persona_overlay_is_stored_with_its_expiry(world: World) -> None:
    out = await _apply(world, {"persona": "Apollo", "ttl_minutes": 10})
    assert (out["kind"], out["persona"], out["state"]) == ("persona", "Apollo", "active")
    async with world.uow() as u:
        [row] = await u.overlays.active("VA", world.clock.now)
        events = await u.audit.for_entity("tnt_a", "VA")
    assert (row.expires_at - row.applied_at).total_seconds() == 600
    assert events[-1].action == "overlay_applied"


async def test_overlays_need_a_plan_that_includes_them(world: World) -> None:
    with pytest.raises(NotEntitled):
        await _apply(world, {"flip": {"amplify": "0.5"}}, tenant="tnt_b", vault="VB")
    async with world.uow() as u:
        assert await u.overlays.list("tnt_b", "VB") == []


async def test_overlays_on_another_tenants_vault_are_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await _apply(world, {"persona": "Ares"}, vault="VB")


@pytest.mark.parametrize("raw", [{"persona": "Zeus"}, {"flip": {"amplify": "99"}},
                                 {"persona": "Ares", "ttl_minutes": 600}, {}])
async def test_bad_overlay_requests_are_refused(world: World, raw: dict) -> None:
    with pytest.raises(ValidationFailed):
        await _apply(world, raw)


async def test_maintenance_holds_orders_until_lifted(world: World) -> None:
    out = await _apply(world, {"maintenance": {"enabled": True}})
    assert out == {"vault_id": "VA", "maintenance": {"enabled": True}}
    async with world.uow() as u:
        assert await u.vaults.under_maintenance(["VA", "VB"]) == {"VA"}
    await _apply(world, {"maintenance": {"enabled": False}})
    assert (await world.submit()).created


async def test_a_persona_boost_changes_sizing_for_opted_in_followers_only(world: World
                                                                          ) -> None:
    opted = await world.follower(scale="1", plan="pro", overlay_opt_in=True)
    plain = await world.follower(scale="1")
    await _apply(world, {"persona": "Apollo"})  # buys x 1.25
    sub = await world.submit(qty="8")
    assert sub.expansion is not None
    qty = {c.follower_id: c.qty for c in sub.expansion.children}
    assert qty == {opted: Decimal(10), plain: Decimal(8)}


async def test_expired_overlays_are_reverted_once_and_stop_counting(world: World) -> None:
    opted = await world.follower(scale="1", plan="pro", overlay_opt_in=True)
    await _apply(world, {"persona": "Apollo", "ttl_minutes": 5})
    world.clock.advance(4 * 60)
    assert await revert_expired(world.db.uow, clock=world.clock) == 0
    world.clock.advance(60)
    assert await revert_expired(world.db.uow, clock=world.clock) == 1
    assert await revert_expired(world.db.uow, clock=world.clock) == 0
    async with world.uow() as u:
        [row] = await u.overlays.list("tnt_a", "VA")
        events = await u.audit.for_entity("tnt_a", "VA")
    assert (row.state, row.reverted_at) == ("reverted", world.clock.now)
    assert [e.action for e in events].count("overlay_reverted") == 1
    sub = await world.submit(qty="8")
    assert sub.expansion is not None
    assert {c.follower_id: c.qty for c in sub.expansion.children} == {opted: Decimal(8)}
