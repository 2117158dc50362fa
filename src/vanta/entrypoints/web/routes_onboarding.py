"""Onboarding pages: sign up a tenant, the team (seats, invitations by mail), accepting an
invitation, and the local mail outbox of the embedded profile.

Sign-up and accepting an invitation start a session for the new user directly on the
embedded profile (the built-in issuer mints the token). With an external OIDC provider the
provider's own accounts must carry the tenant claims, so these two pages say so instead.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from vanta.application.onboarding import invite_by_mail, new_tenant_id, sign_up_tenant
from vanta.application.principal import ROLE_SCOPES
from vanta.application.tenancy import ROLES, accept_invitation, tenant_entitlements
from vanta.domain.entitlements import PLANS
from vanta.domain.errors import DomainError
from vanta.entrypoints.web import visitor
from vanta.entrypoints.web.pages import (
    NAV,
    NavItem,
    PageNotFound,
    container_of,
    flash,
    form_of,
    has_scope,
    page_router,
    plain_words,
    render,
    require_page_principal,
)
from vanta.entrypoints.web.routes_auth import dev_sign_in
from vanta.entrypoints.web.session import (
    SESSION_COOKIE,
    Signer,
    clear_cookie,
    new_session,
    set_cookie,
)

router = page_router()
open_router = APIRouter(include_in_schema=False)  # visitor forms: see web.visitor
NAV.append(NavItem("Team", "/app/team", has_scope("users:manage")))


def _plans() -> list[dict[str, Any]]:
    return [{"id": p.plan_id.value, "name": p.name, "seats": p.seats,
             "vaults": p.max_vaults} for p in PLANS.values()]


def _visitor_page(request: Request, template: str, status: int = 200,
                  **ctx: Any) -> Response:
    token = visitor.issue(request)
    return visitor.attach(request, render(request, template, status, form_token=token,
                                          **ctx), token)


async def _start_session(request: Request, *, subject: str, tenant_id: str, role: str,
                         to: str) -> Response:
    """Signs the new user in (built-in issuer only) exactly as the sign-in callback does."""
    c = container_of(request)
    ttl = c.settings.token_ttl_seconds
    token = c.issuer.issue(subject, tenant_id, ROLE_SCOPES[role], roles=[role],
                           ttl_seconds=ttl)
    principal = await c.verifier.averify(token)
    resp = RedirectResponse(to, status_code=303)
    signer: Signer = request.app.state.signer
    session = new_session(principal, token_exp=int(time.time()) + ttl)
    set_cookie(request, resp, SESSION_COOKIE, signer.dumps(session, "session"), max_age=ttl)
    # the form's value is spent: a second submit (a double click) is refused, not a 2nd tenant
    clear_cookie(request, resp, visitor.VISITOR_COOKIE)
    request.state.web_session_written = True
    request.state.principal = principal
    return resp


@router.get("/signup")
async def signup_form(request: Request) -> Response:
    c = container_of(request)
    return _visitor_page(request, "signup.html", title="Sign up", plans=_plans(),
                         local=dev_sign_in(c), values={})


@open_router.post("/signup")
async def signup(request: Request) -> Response:
    c = container_of(request)
    form = await form_of(request)
    visitor.check(request, form)
    if not dev_sign_in(c):
        raise PageNotFound()
    tenant_id = new_tenant_id()
    subject = f"dev-owner@{tenant_id}"  # who the built-in issuer signs in as this owner
    raw = {k: form.get(k, "") for k in ("name", "email", "plan")}
    try:
        out = await sign_up_tenant(c.uow, raw=raw, subject=subject, tenant_id=tenant_id)
    except DomainError as e:
        return _visitor_page(request, "signup.html", 422, title="Sign up", plans=_plans(),
                             local=True, values=raw, error=plain_words(e))
    return await _start_session(request, subject=subject, tenant_id=out["tenant_id"],
                                role="owner", to=f"/app/billing?plan={out['plan']}")


@router.get("/team")
async def team(request: Request) -> Response:
    p = require_page_principal(request, "users:manage")
    c = container_of(request)
    async with c.uow(readonly=True) as uow:
        users = await uow.users.page(p.tenant_id, None, 200)
        invitations = await uow.invitations.list(p.tenant_id)
        ent = await tenant_entitlements(uow, p.tenant_id)
    now = time.time()
    pending = [i for i in invitations if i.accepted_at is None
               and i.expires_at.timestamp() > now]
    return render(request, "team.html", title="Team", users=users, invitations=invitations,
                  used=len(users) + len(pending),
                  seats="unlimited" if ent.seats is None else str(ent.seats),
                  roles=ROLES, outbox=c.mail_outbox is not None, now=now)


@router.post("/team/invite")
async def team_invite(request: Request) -> Response:
    p = require_page_principal(request, "users:manage")
    c = container_of(request)
    form = await form_of(request)
    try:
        sent = await invite_by_mail(c.uow, c.mailer, tenant_id=p.tenant_id,
                                    raw={"email": form.get("email", ""),
                                         "role": form.get("role", "ops")},
                                    actor=p.subject, app_url=c.settings.public_app_url)
    except DomainError as e:
        flash(request, plain_words(e), "error")
        return RedirectResponse("/app/team", status_code=303)
    if sent.mailed:
        flash(request, f"Invitation sent to {sent.invitation.email}.")
    else:
        flash(request, f"The invitation stands, but the mail to {sent.invitation.email} "
                       f"could not be sent. Pass on this link yourself: {sent.link}", "error")
    return RedirectResponse("/app/team", status_code=303)


@router.get("/invitations/{token}")
async def invitation(request: Request, token: str) -> Response:
    c = container_of(request)
    return _visitor_page(request, "accept.html", title="Accept invitation", token=token,
                         local=dev_sign_in(c))


@open_router.post("/invitations/{token}")
async def accept(request: Request, token: str) -> Response:
    c = container_of(request)
    form = await form_of(request)
    visitor.check(request, form)
    if not dev_sign_in(c):
        raise PageNotFound()
    # the built-in issuer names the new user by the invitation; one identity per invitation
    subject = f"dev-invitee-{token[:16]}"
    try:
        user = await accept_invitation(c.uow(), token=token, raw={"oidc_sub": subject})
    except DomainError as e:
        return _visitor_page(request, "accept.html", 404, title="Accept invitation",
                             token=token, local=True, error=plain_words(e))
    return await _start_session(request, subject=subject, tenant_id=user.tenant_id,
                                role=user.role, to="/app")


@router.get("/outbox")
async def outbox(request: Request, mail: str | None = None) -> Response:
    p = require_page_principal(request, "users:manage")
    box = container_of(request).mail_outbox
    if box is None:
        raise PageNotFound()
    # the folder is the installation's: each tenant lists only the mail sent for it
    items = await box.list(p.tenant_id, 100)
    chosen = await box.get(p.tenant_id, mail) if mail else None
    return render(request, "outbox.html", title="Mail outbox", items=items, chosen=chosen)
