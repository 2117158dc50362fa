"""A webhook or broker URL that could never be reached is refused when it is given."""

from __future__ import annotations

import pytest

from tests.application.conftest import World
from tests.fakes.vetter import FakeTargetVetter
from vanta.application.followers import patch_follower, register_follower
from vanta.domain.errors import ValidationFailed

VETTER = FakeTargetVetter({"10.0.0.5": "private_address", "nowhere.invalid": "unresolvable"})


async def _register(w: World, raw: dict) -> None:
    await register_follower(w.uow(), w.secrets, tenant_id="tnt_a", vault_id="VA", raw=raw,
                            actor="t", clock=w.clock, vetter=VETTER)


@pytest.mark.parametrize(("raw", "code", "field", "reason"), [
    ({"webhook": {"url": "http://10.0.0.5/h"}}, "webhook_url_not_deliverable", "webhook.url",
     "private_address"),
    ({"webhook_url": "https://nowhere.invalid/h"}, "webhook_url_not_deliverable",
     "webhook.url", "unresolvable"),
    ({"bridged": {"broker": "alpaca", "credentials": {
        "key_id": "k", "secret_key": "s", "base_url": "http://10.0.0.5"}}},
     "broker_url_not_deliverable", "bridged.credentials.base_url", "private_address"),
    ({"bridged": {"broker": "paper", "credentials": {"url": "http://nowhere.invalid:8"}}},
     "broker_url_not_deliverable", "bridged.credentials.url", "unresolvable"),
])
async def test_registration_refuses_an_undeliverable_url_before_writing(
        world: World, raw: dict, code: str, field: str, reason: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await _register(world, raw)
    assert (e.value.code, e.value.field) == (code, field)
    assert reason in e.value.message
    assert world.secrets.names() == []
    async with world.uow() as u:
        assert await u.followers.list_for_vault("tnt_a", "VA") == []


async def test_a_deliverable_url_is_registered_after_being_vetted(world: World) -> None:
    vetter = FakeTargetVetter()
    row, _ = await register_follower(world.uow(), world.secrets, tenant_id="tnt_a",
                                     vault_id="VA", raw={"webhook": {"url": "https://a.test/h"}},
                                     actor="t", clock=world.clock, vetter=vetter)
    assert row.webhook_url == "https://a.test/h" and vetter.asked == ["https://a.test/h"]


async def test_patch_refuses_an_undeliverable_url_and_keeps_the_old_one(world: World) -> None:
    fid = await world.follower()
    before = await _url(world, fid)
    with pytest.raises(ValidationFailed) as e:
        await patch_follower(world.uow(), tenant_id="tnt_a", follower_id=fid,
                             raw={"webhook": {"url": "http://10.0.0.5/x"}, "label": "new"},
                             actor="t", clock=world.clock, vetter=VETTER)
    assert e.value.code == "webhook_url_not_deliverable" and "private_address" in e.value.message
    assert await _url(world, fid) == before


async def _url(w: World, fid: str) -> str | None:
    async with w.uow() as u:
        row = await u.followers.get("tnt_a", fid)
    assert row is not None
    return row.webhook_url
