"""Onboarding: a new tenant signs up (tenant, owner, chosen plan), invites teammates by email.

Payment for the chosen plan goes through the existing plan change
(:func:`vanta.application.billing.plan_change.change_plan`: a Stripe Checkout Session or a
BTCPay invoice); until a payment is confirmed by the provider the tenant has no paid
features (no seats beyond its owner, no vaults).
"""

from __future__ import annotations

import html
import logging
import secrets as pysecrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vanta.application.branding import branding_of
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.branding import BrandingUnitOfWork
from vanta.application.ports.mailer import Mailer, MailNotSent, OutgoingMail, valid_address
from vanta.application.ports.records_tenancy import InvitationRecord
from vanta.application.tenancy import invite
from vanta.domain.branding import parse_name
from vanta.domain.entitlements import get_plan
from vanta.domain.errors import Conflict, ValidationFailed

log = logging.getLogger("vanta.mail")

BrandingUowFactory = Callable[[], BrandingUnitOfWork]
ACCEPT_PATH = "/app/invitations/"


def accept_link(app_url: str, token: str) -> str:
    return f"{app_url.rstrip('/')}{ACCEPT_PATH}{token}"


@dataclass(frozen=True)
class SentInvitation:
    invitation: InvitationRecord
    token: str
    link: str
    mailed: bool  # False: the invitation stands, but the mail could not be handed over


def invitation_mail(*, to: str, tenant_name: str, role: str, link: str,
                    expires: str, tenant_id: str | None = None) -> OutgoingMail:
    text = (f"You are invited to join {tenant_name} as {role}.\n\n"
            f"Open this link to accept (it works once, until {expires} UTC):\n{link}\n\n"
            "If you did not expect this invitation, ignore this message.\n")
    e = html.escape
    body = (f"<p>You are invited to join <strong>{e(tenant_name)}</strong> as {e(role)}.</p>"
            f'<p><a href="{e(link)}">Accept the invitation</a> (it works once, until '
            f"{e(expires)} UTC).</p><p>If you did not expect this invitation, ignore this "
            "message.</p>")
    # the tenant's name is the owner's text: kept to one line in the subject
    subject = f"Join {' '.join(tenant_name.split())} as {role}"
    return OutgoingMail(to=to, subject=subject, text=text, html=body, tenant_id=tenant_id)


async def invite_by_mail(uow_factory: BrandingUowFactory, mailer: Mailer | None, *,
                         tenant_id: str, raw: object, actor: str, app_url: str,
                         clock: Clock = utcnow) -> SentInvitation:
    """The invitation (seat limits as :func:`tenancy.invite`), then its email with the accept
    link. A mail that cannot be sent does not undo the invitation: it is reported as not
    mailed (and audited), so the owner can pass the link on another way."""
    row, token = await invite(uow_factory(), tenant_id=tenant_id, raw=raw, actor=actor,
                              clock=clock)
    link = accept_link(app_url, token)
    uow = uow_factory()
    async with uow:
        name = (await branding_of(uow, tenant_id)).display_name
    mailed = False
    if mailer is not None:
        try:
            await mailer.send(invitation_mail(
                to=row.email, tenant_name=name, role=row.role, link=link,
                expires=row.expires_at.strftime("%Y-%m-%d %H:%M"), tenant_id=tenant_id))
            mailed = True
        except MailNotSent as e:
            log.warning("invitation %s not mailed: %s", row.invitation_id, e)
    async with uow:
        await uow.audit.append(entity="tenant", entity_id=tenant_id,
                               action="invitation_mailed" if mailed else "invitation_not_mailed",
                               actor=actor, tenant_id=tenant_id,
                               payload={"invitation_id": row.invitation_id})
        await uow.commit()
    return SentInvitation(row, token, link, mailed)


def new_tenant_id() -> str:
    return f"tnt_{pysecrets.token_hex(8)}"


def _parse_sign_up(raw: object) -> tuple[str, str, str]:
    if not isinstance(raw, dict):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - {"name", "email", "plan"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    try:
        name = parse_name(raw.get("name"))
    except ValidationFailed:
        raise ValidationFailed("name must be 1 to 80 printable characters",
                               code="invalid_name", field="name") from None
    email = raw.get("email")
    if not isinstance(email, str) or not valid_address(email):
        raise ValidationFailed("email is not a valid address", code="invalid_email",
                               field="email")
    try:
        plan = get_plan(raw.get("plan")).plan_id.value
    except ValidationFailed as e:
        raise ValidationFailed(e.message, code=e.code, field="plan") from None
    return name, email.lower(), plan


async def sign_up_tenant(uow_factory: BrandingUowFactory, *, raw: object, subject: str,
                         tenant_id: str | None = None, clock: Clock = utcnow
                         ) -> dict[str, Any]:
    """A new tenant with the signed-in identity (``subject``) as its owner. The chosen plan is
    recorded (audit) and paid next; an identity that already belongs to a tenant is refused."""
    name, email, plan = _parse_sign_up(raw)
    if not 1 <= len(subject) <= 255:
        raise ValidationFailed("the identity has no subject", code="invalid_subject")
    now = clock()
    tenant_id = tenant_id or new_tenant_id()
    user = {"user_id": f"usr_{pysecrets.token_hex(8)}", "tenant_id": tenant_id,
            "email": email, "role": "owner", "oidc_sub": subject, "created_at": now}
    uow = uow_factory()
    async with uow:
        if await uow.users.by_sub(subject) is not None:
            raise Conflict("this identity already belongs to a tenant", code="user_exists")
        await uow.tenants.add({"tenant_id": tenant_id, "name": name, "status": "active",
                               "created_at": now})
        await uow.users.add(user)
        await uow.audit.append(entity="tenant", entity_id=tenant_id, action="signed_up",
                               actor=subject, tenant_id=tenant_id,
                               payload={"name": name, "plan_chosen": plan,
                                        "owner": user["user_id"]})
        await uow.commit()
    return {"tenant_id": tenant_id, "user_id": user["user_id"], "name": name, "plan": plan,
            "role": "owner"}
