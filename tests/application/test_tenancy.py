"""Tenants, plans, users and invitations."""

from __future__ import annotations

from dataclasses import fields
from datetime import timedelta

import pytest

from tests.application.conftest import World
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import (
    accept_invitation,
    grant_plan,
    invite,
    require_feature,
    tenant_entitlements,
)
from vanta.domain.entitlements import Feature
from vanta.domain.errors import Conflict, NotEntitled, NotFound, ValidationFailed


async def _invite(w: World, email: str = "new@corp.example", tenant: str = "tnt_a",
                  role: str = "ops") -> str:
    _, token = await invite(w.uow(), tenant_id=tenant, raw={"email": email, "role": role},
                            actor="owner", clock=w.clock)
    return token


async def test_creating_a_tenant_and_vault_twice_keeps_one_of_each(world: World) -> None:
    await create_tenant(world.uow(), tenant_id="tnt_a", name="renamed")
    await create_vault(world.uow(), tenant_id="tnt_a", vault_id="VA", label="again")
    async with world.uow() as u:
        tenant = await u.tenants.get("tnt_a")
        vaults = await u.vaults.list("tnt_a")
    assert tenant is not None and tenant.name == "tnt_a"
    assert [v.label for v in vaults] == ["A"]


async def test_a_granted_plan_replaces_the_previous_one(world: World) -> None:
    async with world.uow() as u:  # both read inside the caller's unit of work
        assert (await tenant_entitlements(u, "tnt_b")).plan_id == "core"
        with pytest.raises(NotEntitled):
            await require_feature(u, "tnt_b", Feature.PERSONA_BOOSTS)
    await grant_plan(world.uow(), tenant_id="tnt_b", plan_id="pro", actor="ops",
                     clock=world.clock)
    async with world.uow() as u:
        assert (await tenant_entitlements(u, "tnt_b")).plan_id == "pro"
        await require_feature(u, "tnt_b", Feature.PERSONA_BOOSTS)
        sub = await u.subscriptions.current("tnt_b")
    assert sub is not None and sub.plan_id == "pro"


async def test_a_tenant_without_a_plan_has_no_paid_features(world: World) -> None:
    await create_tenant(world.uow(), tenant_id="tnt_c", name="c")
    async with world.uow() as u:
        ent = await tenant_entitlements(u, "tnt_c")
    assert not ent.active


async def test_an_invitation_is_accepted_once_into_a_user(world: World) -> None:
    token = await _invite(world, "New@Corp.example", role="auditor")
    user = await accept_invitation(world.uow(), token=token, raw={"oidc_sub": "idp|42"},
                                   clock=world.clock)
    assert (user.tenant_id, user.email, user.role) \
        == ("tnt_a", "new@corp.example", "auditor")
    async with world.uow() as u:
        assert await u.users.count("tnt_a") == 1
        assert (await u.users.by_sub("idp|42")).user_id == user.user_id
        assert await u.invitations.pending("tnt_a", world.clock.now) == 0
    with pytest.raises(NotFound):
        await accept_invitation(world.uow(), token=token, raw={"oidc_sub": "idp|43"},
                                clock=world.clock)


async def test_the_token_is_never_stored(world: World) -> None:
    token = await _invite(world)
    async with world.uow() as u:
        [row] = await u.invitations.list("tnt_a")
    assert token not in (getattr(row, f.name) for f in fields(row)) \
        and row.token_hash != token


async def test_an_expired_invitation_cannot_be_accepted(world: World) -> None:
    token = await _invite(world)
    world.clock.advance(timedelta(days=7).total_seconds())
    with pytest.raises(NotFound):
        await accept_invitation(world.uow(), token=token, raw={"oidc_sub": "idp|1"},
                                clock=world.clock)


async def test_an_identity_joins_one_tenant_only(world: World) -> None:
    first = await _invite(world)
    second = await _invite(world, "other@corp.example")
    await accept_invitation(world.uow(), token=first, raw={"oidc_sub": "idp|1"},
                            clock=world.clock)
    with pytest.raises(Conflict) as e:
        await accept_invitation(world.uow(), token=second, raw={"oidc_sub": "idp|1"},
                                clock=world.clock)
    assert e.value.code == "user_exists"
    async with world.uow() as u:
        assert await u.invitations.pending("tnt_a", world.clock.now) == 1  # still open


async def test_seats_count_users_and_open_invitations(world: World) -> None:
    await _invite(world, tenant="tnt_b")  # core: one seat
    with pytest.raises(Conflict) as e:
        await _invite(world, "second@corp.example", tenant="tnt_b")
    assert e.value.code == "seat_limit_reached"
    world.clock.advance(timedelta(days=8).total_seconds())  # the first one lapsed
    await _invite(world, "third@corp.example", tenant="tnt_b")


@pytest.mark.parametrize(("raw", "code"), [
    ({"email": "not-an-email"}, "invalid_email"),
    ({"email": "a@b.example", "role": "god"}, "invalid_role"),
    ({"email": "a@b.example", "extra": 1}, "invalid_body"),
])
async def test_bad_invitations_are_refused(world: World, raw: dict, code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await invite(world.uow(), tenant_id="tnt_a", raw=raw, actor="o", clock=world.clock)
    assert e.value.code == code
