"""Routes for the tenant: plan and entitlements, users and invitations, the pull feed, and
the OAuth token exchange."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from sse_starlette.sse import EventSourceResponse

from vanta.application.audit_feed import FeedItem, feed_items
from vanta.application.onboarding import invite_by_mail
from vanta.application.ports.identity import TokenExchangeError
from vanta.application.principal import Principal
from vanta.application.snapshots import narrow_payload
from vanta.application.tenancy import accept_invitation, tenant_entitlements
from vanta.bootstrap import Container
from vanta.domain.entitlements import Feature, decide
from vanta.entrypoints.api.access import visible_order, visible_vaults
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep, Cursor, Limit
from vanta.entrypoints.api.jsonbody import read_json
from vanta.entrypoints.api.models import body, openapi_body, parse
from vanta.entrypoints.api.models.tenancy import AcceptIn, InviteIn, TokenIn
from vanta.entrypoints.api.pagination import decode, keyset_page
from vanta.entrypoints.api.problems import ApiProblem

MAX_EVENT_ID = 2**63 - 1  # event ids are signed 64-bit integers in the database

router = APIRouter()


def _resume_after(cursor: int | None, last_event_id: str | None) -> int:
    """The event id to resume after; a Last-Event-ID that is not one is refused up front."""
    if cursor is not None or not last_event_id:
        return cursor or 0
    if not (last_event_id.isascii() and last_event_id.isdigit()
            and int(last_event_id) <= MAX_EVENT_ID):
        raise ApiProblem(400, "invalid_last_event_id",
                         f"Last-Event-ID must be an event id from 0 to {MAX_EVENT_ID}")
    return int(last_event_id)


@router.get("/v1/subscriptions/me", tags=["billing"])
async def my_subscription(container: ContainerDep,
                          p: Principal = Depends(require("billing:read"))) -> dict[str, Any]:
    async with container.uow(readonly=True) as uow:
        row = await uow.subscriptions.current(p.tenant_id)
        ent = await tenant_entitlements(uow, p.tenant_id)
    return {"plan": ent.plan_id, "status": row.status if row else "none",
            "provider": row.provider if row else None,
            "renewal_at": row.renewal_at.isoformat() if row and row.renewal_at
            else None,
            "entitlements": ent.to_json()}


@router.get("/v1/users", tags=["tenancy"])
async def users(container: ContainerDep,
                p: Principal = Depends(require("users:manage")),
                limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    after = decode(cursor)
    async with container.uow(readonly=True) as uow:
        rows = await uow.users.page(p.tenant_id, after, limit + 1)
        invites = await uow.invitations.list(p.tenant_id)
    # the users are paged; the (short-lived, few) invitations come whole with every page
    return {**keyset_page(rows, limit, [{"user_id": u.user_id, "email": u.email,
                                         "role": u.role,
                                         "created_at": u.created_at.isoformat()}
                                        for u in rows[:limit]],
                          lambda u: (u.created_at, u.user_id)),
            "invitations": [{"invitation_id": i.invitation_id, "email": i.email,
                             "role": i.role, "expires_at": i.expires_at.isoformat(),
                             "accepted": i.accepted_at is not None} for i in invites]}


@router.post("/v1/invitations", status_code=201, tags=["tenancy"],
             openapi_extra=openapi_body(InviteIn))
async def create_invitation(container: ContainerDep,
                            p: Annotated[Principal, Depends(require("users:manage"))],
                            req: Annotated[InviteIn, body(InviteIn)]) -> dict[str, Any]:
    sent = await invite_by_mail(container.uow, container.mailer, tenant_id=p.tenant_id,
                                raw=req.to_raw(), actor=p.subject,
                                app_url=container.settings.public_app_url)
    row = sent.invitation
    # the token is shown once; it is also mailed to the invitee as the accept link
    # ("mailed": false when the mail could not be handed over)
    return {"invitation_id": row.invitation_id, "email": row.email,
            "role": row.role, "expires_at": row.expires_at.isoformat(),
            "token": sent.token, "mailed": sent.mailed}


@router.post("/v1/invitations/{token}/accept", status_code=201, tags=["tenancy"],
             openapi_extra=openapi_body(AcceptIn))
async def accept(token: str, container: ContainerDep,
                 req: Annotated[AcceptIn, body(AcceptIn)]) -> dict[str, Any]:
    user = await accept_invitation(container.uow(), token=token, raw=req.to_raw())
    return {"user_id": user.user_id, "tenant_id": user.tenant_id,
            "role": user.role}


@router.get("/v1/feed", tags=["orders"],
       responses={200: {"content": {"text/event-stream": {}},
                        "description": "server-sent events"}})
async def feed(
    request: Request, container: ContainerDep, p: Principal = Depends(require("orders:read")),
    cursor: int | None = Query(None, ge=0, le=MAX_EVENT_ID,
                               description="resume after this event id"),
    follow: bool = True,
    last_event_id: str | None = Header(None, alias="Last-Event-ID"),
) -> EventSourceResponse:
    async with container.uow(readonly=True) as uow:
        ent = await tenant_entitlements(uow, p.tenant_id)
    decision = decide(ent, Feature.API_PULL_FEED)
    if not decision.allowed:
        raise ApiProblem(403, decision.reason, "the API pull feed is part of the "
                         "Institutional plan")
    start = _resume_after(cursor, last_event_id)
    vaults = await visible_vaults(container, p)
    return EventSourceResponse(_events(container, p, vaults, start, follow, request),
                               ping=15)


@router.post("/v1/auth/token", tags=["identity"], openapi_extra=openapi_body(TokenIn))
async def token(request: Request, container: ContainerDep) -> dict[str, Any]:
    exchange = container.token_exchange
    if exchange is None:  # answered before the body is read, whatever the body
        raise ApiProblem(409, "oidc_not_configured", "no OIDC provider is configured; on "
                         "the embedded profile tokens come from `vanta token`")
    req = parse(TokenIn, await read_json(request))
    try:
        if req.grant_type == "authorization_code":
            return await exchange.exchange_code(req.client_id, req.client_secret, req.code,
                                                req.redirect_uri, req.code_verifier)
        return await exchange.client_credentials(req.client_id, req.client_secret, req.scope)
    except TokenExchangeError as e:
        raise ApiProblem(400 if e.status and e.status < 500 else 502, e.code,
                         e.description or "the token exchange failed") from None


async def _events(container: Container, p: Principal, vaults: frozenset[str] | None,
                  after: int, follow: bool, request: Request
                  ) -> AsyncIterator[dict[str, Any]]:
    """Manager intents and child orders from the audit log, resumable by event id. The
    records of one batch event share its id, which only the last of them carries: a client
    that drops in the middle of a batch gets the whole batch again, never a gap."""
    while True:
        async with container.uow() as uow:
            items = await feed_items(uow, p.tenant_id, after, 500)
            visible = await _visible(uow, p, vaults, items)
        for n, item in enumerate(items):
            after = item.seq
            if n in visible:
                # a manager order's snapshot lists every follower's holdings: narrowed
                payload = narrow_payload(p, item.payload)
                yield {**({"id": str(item.seq)} if item.closes_event else {}),
                       "event": item.entity,
                       "data": json.dumps({"action": item.action, "id": item.entity_id,
                                           "ts": item.ts, **payload}, default=str)}
        if not items and (not follow or await request.is_disconnected()):
            return
        if not items:
            await asyncio.sleep(0.5)


async def _visible(uow: Any, p: Principal, vaults: frozenset[str] | None,
                   items: list[FeedItem]) -> set[int]:
    """The positions in ``items`` the principal may see."""
    if vaults is None and p.follower_id is None:
        return set(range(len(items)))
    out: set[int] = set()
    for n, r in enumerate(items):
        if r.entity == "manager_order":
            mo = await uow.manager_orders.get(p.tenant_id, r.entity_id)
            ok = visible_order(p, vaults, mo)
        else:
            child = await uow.child_orders.get(p.tenant_id, r.entity_id)
            ok = child is not None and (vaults is None or child.vault_id in vaults) and \
                p.may_see_follower(child.follower_id)
        if ok:
            out.add(n)
    return out
