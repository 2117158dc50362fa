"""Onboarding over the fakes: sign-up, invitations by mail, the tenant's brand."""

from __future__ import annotations

import pytest

from tests.application.conftest import World
from tests.fakes.mailer import FakeMailer
from tests.images import data_url, png
from vanta.application.branding import branding_doc, branding_of, set_branding
from vanta.application.onboarding import accept_link, invite_by_mail, sign_up_tenant
from vanta.application.tenancy import accept_invitation
from vanta.domain.errors import Conflict, ValidationFailed

APP = "https://app.example"


async def _audit(w: World, action: str) -> list[dict[str, object]]:
    async with w.uow() as u:
        return [dict(e.payload) for e in await u.audit.all() if e.action == action]


async def test_an_invitation_is_mailed_with_a_link_that_accepts_it(world: World) -> None:
    mailer = FakeMailer()
    sent = await invite_by_mail(world.uow, mailer, tenant_id="tnt_a",
                                raw={"email": "Ada@Corp.example", "role": "auditor"},
                                actor="owner-1", app_url=APP + "/", clock=world.clock)
    assert sent.mailed and sent.link == accept_link(APP, sent.token)
    [mail] = mailer.sent
    assert mail.to == "ada@corp.example" and "auditor" in mail.subject
    assert sent.link in mail.text and mail.html is not None and sent.link in mail.html
    token = sent.link.rsplit("/", 1)[1]  # what the invitee's click carries
    user = await accept_invitation(world.uow(), token=token, raw={"oidc_sub": "idp|ada"},
                                   clock=world.clock)
    assert (user.tenant_id, user.role, user.email) == ("tnt_a", "auditor", "ada@corp.example")
    assert await _audit(world, "invitation_mailed") == [
        {"invitation_id": sent.invitation.invitation_id}]


async def test_the_mail_names_the_tenant_by_its_brand(world: World) -> None:
    await set_branding(world.uow(), tenant_id="tnt_a",
                       raw={"display_name": "Acme <Capital>", "accent_color": "#000"},
                       actor="owner-1", clock=world.clock)
    mailer = FakeMailer()
    await invite_by_mail(world.uow, mailer, tenant_id="tnt_a", raw={"email": "b@corp.example"},
                         actor="owner-1", app_url=APP, clock=world.clock)
    [mail] = mailer.sent
    assert "Acme <Capital>" in mail.text
    assert mail.html is not None and "Acme &lt;Capital&gt;" in mail.html  # escaped in HTML


async def test_no_seat_left_sends_no_mail(world: World) -> None:
    # tenant B is on Core: one seat, taken by the first invitation
    mailer = FakeMailer()
    await invite_by_mail(world.uow, mailer, tenant_id="tnt_b", raw={"email": "a@b.example"},
                         actor="o", app_url=APP, clock=world.clock)
    with pytest.raises(Conflict) as e:
        await invite_by_mail(world.uow, mailer, tenant_id="tnt_b",
                             raw={"email": "c@b.example"}, actor="o", app_url=APP,
                             clock=world.clock)
    assert e.value.code == "seat_limit_reached"
    assert [m.to for m in mailer.sent] == ["a@b.example"]


async def test_a_mail_that_cannot_be_sent_keeps_the_invitation_and_says_so(world: World) -> None:
    mailer = FakeMailer()
    mailer.fail_next()
    sent = await invite_by_mail(world.uow, mailer, tenant_id="tnt_a",
                                raw={"email": "d@corp.example"}, actor="o", app_url=APP,
                                clock=world.clock)
    assert not sent.mailed and mailer.sent == []
    async with world.uow() as u:
        assert [i.email for i in await u.invitations.list("tnt_a")] == ["d@corp.example"]
    assert await _audit(world, "invitation_not_mailed") == [
        {"invitation_id": sent.invitation.invitation_id}]


async def test_sign_up_creates_the_tenant_with_its_owner_and_chosen_plan(world: World) -> None:
    out = await sign_up_tenant(world.uow, raw={"name": "Nova Fund", "email": "Eve@Nova.example",
                                               "plan": "pro"},
                               subject="idp|eve", clock=world.clock)
    assert out["plan"] == "pro" and out["role"] == "owner"
    async with world.uow() as u:
        tenant = await u.tenants.get(out["tenant_id"])
        owner = await u.users.by_sub("idp|eve")
        sub = await u.subscriptions.current(out["tenant_id"])
    assert tenant is not None and tenant.name == "Nova Fund"
    assert owner is not None and (owner.tenant_id, owner.role, owner.email) == (
        out["tenant_id"], "owner", "eve@nova.example")
    assert sub is None  # nothing is granted before the provider confirms a payment
    [audit] = await _audit(world, "signed_up")
    assert audit["plan_chosen"] == "pro"


async def test_one_identity_signs_up_one_tenant(world: World) -> None:
    raw = {"name": "N", "email": "e@n.example", "plan": "core"}
    await sign_up_tenant(world.uow, raw=raw, subject="idp|eve", clock=world.clock)
    with pytest.raises(Conflict) as e:
        await sign_up_tenant(world.uow, raw=raw, subject="idp|eve", clock=world.clock)
    assert e.value.code == "user_exists"


@pytest.mark.parametrize("raw,code", [
    ({"name": "N", "email": "e@n.example", "plan": "gold"}, "unknown_plan"),
    ({"name": "", "email": "e@n.example", "plan": "core"}, "invalid_name"),
    ({"name": "N", "email": "e@n", "plan": "core"}, "invalid_email"),
    ({"name": "N", "email": "e@n.example", "plan": "core", "tenant_id": "tnt_a"},
     "unknown_field"),
])
async def test_sign_up_refuses_bad_input_and_creates_nothing(world: World, raw: dict[str, str],
                                                             code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        await sign_up_tenant(world.uow, raw=raw, subject="idp|x", clock=world.clock)
    assert e.value.code == code
    assert await _audit(world, "signed_up") == []


async def test_branding_defaults_to_the_tenant_name_and_a_set_brand_is_audited(
        world: World) -> None:
    async with world.uow() as u:
        assert branding_doc(await branding_of(u, "tnt_a")) == {
            "display_name": "tnt_a", "accent_color": "#2563eb", "logo": None}
    logo = data_url("image/png", png(2, 2))
    await set_branding(world.uow(), tenant_id="tnt_a",
                       raw={"display_name": "Acme", "accent_color": "#0A7", "logo": logo},
                       actor="owner-1", clock=world.clock)
    async with world.uow() as u:
        assert branding_doc(await branding_of(u, "tnt_a")) == {
            "display_name": "Acme", "accent_color": "#00aa77", "logo": logo}
        assert (await branding_of(u, "tnt_b")).display_name == "tnt_b"  # its own, untouched
    [event] = await _audit(world, "branding_set")
    assert event["before"] == {"display_name": "tnt_a", "accent_color": "#2563eb",
                               "logo": None}
    after = event["after"]
    assert isinstance(after, dict) and after["logo"]["type"] == "image/png"
    assert "base64" not in str(event)  # the audit keeps the logo's digest, not its bytes


async def test_a_refused_brand_changes_nothing(world: World) -> None:
    with pytest.raises(ValidationFailed):
        await set_branding(world.uow(), tenant_id="tnt_a",
                           raw={"display_name": "Acme", "accent_color": "blue"}, actor="o",
                           clock=world.clock)
    async with world.uow() as u:
        assert await u.branding.get("tnt_a") is None
    assert await _audit(world, "branding_set") == []
