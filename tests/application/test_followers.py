"""Registering, patching and re-keying followers; their NAV reports."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.application.conftest import World
from vanta.application.followers import patch_follower, register_follower, rotate_webhook_secret
from vanta.application.navs import record_nav
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.domain.errors import NotFound, ValidationFailed


async def _row(w: World, fid: str, tenant: str = "tnt_a") -> FollowerRecord:
    async with w.uow() as u:
        row = await u.followers.get(tenant, fid)
    assert row is not None
    return row


async def test_registration_stores_the_follower_and_its_signing_key(world: World) -> None:
    fid = await world.follower(label="Ada", scale="0.25", max_pos_usd=1000, plan="pro")
    row = await _row(world, fid)
    assert (row.label, row.scale, row.mode, row.max_pos_usd) \
        == ("Ada", Decimal("0.25"), "capped", Decimal(1000))
    assert world.secrets.get(row.hmac_key_ref)  # the key is in the store, by reference
    assert world.secrets_of[fid].startswith("whsec_")
    async with world.uow() as u:
        [ev] = await u.audit.for_entity("tnt_a", fid)
    assert ev.action == "registered" and ev.payload["after"]["label"] == "Ada"


async def test_registration_in_an_unknown_vault_keeps_no_secret(world: World) -> None:
    with pytest.raises(NotFound):
        await world.follower(vault_id="VB")  # tenant B's vault, seen from tenant A
    assert world.secrets.names() == []
    async with world.uow() as u:
        assert await u.followers.list_for_vault("tnt_b", "VB") == []


@pytest.mark.parametrize(("raw", "code"), [
    ({"label": "x", "scale": "0.5"}, "missing_field"),
    ({"webhook": {"url": "ftp://x"}}, "invalid_webhook_url"),
    ({"webhook": {"url": "https://u:p@x.example"}}, "invalid_webhook_url"),
    ({"webhook": {"url": "https://x.example"}, "colour": "red"}, "unknown_field"),
    ({"webhook": {"url": "https://x.example"}, "plan": "gold"}, "invalid_plan"),
])
async def test_registration_refuses_bad_input_before_writing(world: World, raw: dict,
                                                             code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await register_follower(world.uow(), world.secrets, tenant_id="tnt_a", vault_id="VA",
                                raw=raw, actor="t", clock=world.clock)
    assert e.value.code == code
    assert world.secrets.names() == []


async def test_a_mode_outside_the_followers_plan_is_refused(world: World) -> None:
    with pytest.raises(ValidationFailed) as e:
        await world.follower(max_pos_usd=1000)  # capping is not part of core
    assert e.value.field == "mode"


async def test_a_patch_changes_settings_and_audits_before_and_after(world: World) -> None:
    fid = await world.follower(scale="0.5", plan="pro")
    world.clock.advance(60)
    after = await patch_follower(world.uow(), tenant_id="tnt_a", follower_id=fid,
                                 raw={"scale": "0.75", "max_pos_usd": 500}, actor="ops",
                                 clock=world.clock)
    row = await _row(world, fid)
    assert (row.scale, row.mode, row.updated_at) \
        == (Decimal("0.75"), "capped", world.clock.now)  # a cap turns capping on
    assert after.scale == Decimal("0.75")
    async with world.uow() as u:
        ev = (await u.audit.for_entity("tnt_a", fid))[-1]
    assert ev.payload["before"]["scale"] == "0.5"
    assert ev.payload["after"]["scale"] == "0.75"
    assert ev.payload["changed"] == ["max_pos_usd", "scale"]


async def test_pausing_records_why_and_resuming_clears_it(world: World) -> None:
    fid = await world.follower()
    await patch_follower(world.uow(), tenant_id="tnt_a", follower_id=fid,
                         raw={"paused": True}, actor="ops", clock=world.clock)
    assert (await _row(world, fid)).paused_reason == "manual"
    await patch_follower(world.uow(), tenant_id="tnt_a", follower_id=fid,
                         raw={"paused": False}, actor="ops", clock=world.clock)
    row = await _row(world, fid)
    assert (row.paused, row.paused_reason) == (False, None)


async def test_a_patch_reenables_a_disabled_webhook(world: World) -> None:
    fid = await world.follower()
    async with world.uow() as u:
        await u.followers.update("tnt_a", fid, webhook_disabled_at=world.clock.now,
                                 webhook_disabled_reason="410 Gone")
        await u.commit()
    await patch_follower(world.uow(), tenant_id="tnt_a", follower_id=fid,
                         raw={"webhook": {"url": "https://new.example/h"}}, actor="ops",
                         clock=world.clock)
    row = await _row(world, fid)
    assert (row.webhook_url, row.webhook_disabled_at, row.webhook_disabled_reason) \
        == ("https://new.example/h", None, None)


async def test_patches_reach_only_the_tenants_own_followers(world: World) -> None:
    fid = await world.follower()
    with pytest.raises(NotFound):
        await patch_follower(world.uow(), tenant_id="tnt_b", follower_id=fid,
                             raw={"scale": "9"}, actor="x", clock=world.clock)
    with pytest.raises(ValidationFailed) as e:
        await patch_follower(world.uow(), tenant_id="tnt_a", follower_id=fid, raw={},
                             actor="x", clock=world.clock)
    assert e.value.code == "empty_patch"
    assert (await _row(world, fid)).scale == Decimal("0.5")


async def test_rotating_the_key_keeps_the_old_one_signing_for_the_overlap(world: World
                                                                          ) -> None:
    fid = await world.follower()
    old_ref = (await _row(world, fid)).hmac_key_ref
    out = await rotate_webhook_secret(world.uow(), world.secrets, tenant_id="tnt_a",
                                      follower_id=fid, raw={"overlap_seconds": 600},
                                      actor="ops", clock=world.clock)
    row = await _row(world, fid)
    assert row.hmac_key_ref != old_ref and out["webhook_secret"].startswith("whsec_")
    until = (world.clock.now + timedelta(seconds=600)).isoformat()
    assert row.webhook_keys == [{"ref": old_ref, "not_after": until}]
    assert out["previous_valid_until"] == until


async def test_bringing_a_signing_key_needs_the_institutional_plan(world: World) -> None:
    fid = await world.follower(plan="pro")
    with pytest.raises(ValidationFailed) as e:
        await rotate_webhook_secret(world.uow(), world.secrets, tenant_id="tnt_a",
                                    follower_id=fid, raw={"secret": "whsec_" + "A" * 40},
                                    actor="ops", clock=world.clock)
    assert e.value.code == "plan_lacks_feature"


async def test_nav_reports_for_vaults_and_followers(world: World) -> None:
    fid = await world.follower()
    earlier = (world.clock.now - timedelta(hours=1)).isoformat()
    out = await record_nav(world.uow(), tenant_id="tnt_a", entity="follower", entity_id=fid,
                           raw={"nav": "1000.50", "as_of": earlier}, actor="ops",
                           clock=world.clock)
    assert out["nav"] == "1000.5"
    await record_nav(world.uow(), tenant_id="tnt_a", entity="vault", entity_id="VA",
                     raw={"nav": "250000"}, actor="ops", clock=world.clock)
    async with world.uow() as u:
        hist = await u.navs.history("follower", [fid], world.clock.now)
        vault = await u.navs.history("vault", ["VA"], world.clock.now)
    assert [n for _, n in hist[fid]] == [Decimal("1000.5")]
    assert vault["VA"] == [(world.clock.now, Decimal(250000))]


@pytest.mark.parametrize(("raw", "code"), [
    ({"nav": "100", "as_of": "2999-01-01T00:00:00Z"}, "invalid_as_of"),
    ({"nav": "100", "as_of": "2026-01-01T00:00:00"}, "invalid_as_of"),
    ({"as_of": "2026-01-01T00:00:00Z"}, "missing_field"),
    ({"nav": "100", "extra": 1}, "unknown_field"),
])
async def test_nav_reports_refuse_bad_input(world: World, raw: dict, code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await record_nav(world.uow(), tenant_id="tnt_a", entity="vault", entity_id="VA",
                         raw=raw, actor="ops", clock=world.clock)
    assert e.value.code == code


async def test_nav_reports_for_another_tenants_entity_are_not_found(world: World) -> None:
    with pytest.raises(NotFound) as e:
        await record_nav(world.uow(), tenant_id="tnt_a", entity="vault", entity_id="VB",
                         raw={"nav": "1"}, actor="ops", clock=world.clock)
    assert e.value.code == "vault_not_found"


async def test_nav_ratio_followers_are_sized_on_the_reported_navs(world: World) -> None:
    fid = await world.follower(scale_mode="nav_ratio", scale="1")
    for entity, eid, nav in (("vault", "VA", "100000"), ("follower", fid, "10000")):
        await record_nav(world.uow(), tenant_id="tnt_a", entity=entity, entity_id=eid,
                         raw={"nav": nav}, actor="ops", clock=world.clock)
    sub = await world.submit(qty="100")
    assert sub.expansion is not None
    [child] = sub.expansion.children
    assert (child.state.value, child.qty) == ("pending", Decimal(10))  # 100 x 10k / 100k
