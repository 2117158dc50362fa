"""Tenant plans (entitlements), users and invitations."""

from __future__ import annotations

import hashlib
import secrets as pysecrets
from datetime import datetime, timedelta
from typing import Any

from vanta.application import entitlements_cache
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.mailer import valid_address
from vanta.application.ports.records_tenancy import InvitationRecord, UserRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.entitlements import (
    DecisionContext,
    Entitlements,
    Feature,
    decide,
    entitlements_for,
)
from vanta.domain.errors import Conflict, NotEntitled, NotFound, ValidationFailed
from vanta.domain.ids import new_id
from vanta.domain.subscriptions import DEFAULT_GRACE, effective_status

INVITATION_TTL = timedelta(days=7)
ROLES = ("owner", "ops", "auditor", "follower")


async def tenant_entitlements(uow: UnitOfWork, tenant_id: str,
                              now: datetime | None = None,
                              grace: timedelta = DEFAULT_GRACE) -> Entitlements:
    """What the tenant's subscription grants right now (grace periods included). A tenant
    without a subscription has none of the paid features."""
    cached = await entitlements_cache.cache().get(tenant_id)
    if cached is not None:
        doc = cached["row"]
        if doc is None:
            return Entitlements.none()
        grant, status = doc["entitlements"], doc["status"]
        since = datetime.fromisoformat(doc["past_due_since"]) if doc["past_due_since"] \
            else None
    else:
        sub = await uow.subscriptions.current(tenant_id)
        await entitlements_cache.cache().put(tenant_id, sub)
        if sub is None:
            return Entitlements.none()
        grant, status, since = sub.entitlements, sub.status, sub.past_due_since
    ent = Entitlements.from_json(grant)
    return ent.with_access(effective_status(status, since, now or utcnow(), grace=grace))


async def grant_plan(uow: UnitOfWork, *, tenant_id: str, plan_id: str, actor: str,
                     clock: Clock = utcnow) -> dict[str, Any]:
    """A manually granted, active subscription (operators, the demo, tests)."""
    now = clock()
    ent = entitlements_for(plan_id)
    async with uow:
        row: dict[str, Any] = {
            "subscription_id": new_id(), "tenant_id": tenant_id, "plan_id": plan_id,
            "status": "active", "entitlements": ent.to_json(), "renewal_at": None,
            "created_at": now, "provider": "manual", "updated_at": now}
        await uow.subscriptions.replace(tenant_id, row)
        await uow.audit.append(entity="subscription", entity_id=row["subscription_id"],
                               action="granted", actor=actor, tenant_id=tenant_id,
                               payload={"plan": plan_id})
        await uow.commit()
    await entitlements_cache.cache().invalidate(tenant_id)
    return row


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def invite(uow: UnitOfWork, *, tenant_id: str, raw: object, actor: str,
                 clock: Clock = utcnow) -> tuple[InvitationRecord, str]:
    """Returns the invitation and its one-time token (only its hash is stored)."""
    if not isinstance(raw, dict) or set(raw) - {"email", "role"}:
        raise ValidationFailed("body takes email and role", code="invalid_body")
    email, role = raw.get("email"), raw.get("role", "ops")
    if not isinstance(email, str) or not valid_address(email):
        raise ValidationFailed("email is not a valid address", code="invalid_email",
                               field="email")
    if role not in ROLES:
        raise ValidationFailed(f"role must be one of {', '.join(ROLES)}", code="invalid_role",
                               field="role")
    now = clock()
    token = pysecrets.token_urlsafe(32)
    async with uow:
        ent = await tenant_entitlements(uow, tenant_id, now)
        used = await uow.users.count(tenant_id) + await uow.invitations.pending(tenant_id, now)
        decision = decide(ent, Feature.SEATS, context=DecisionContext(current_count=used))
        if not decision.allowed:
            raise Conflict(f"no seat available ({decision.reason})", code=decision.reason)
        row = {"invitation_id": new_id(), "tenant_id": tenant_id, "email": email.lower(),
               "role": role, "token_hash": _token_hash(token), "created_by": actor,
               "created_at": now, "expires_at": now + INVITATION_TTL, "accepted_at": None,
               "user_id": None}
        await uow.invitations.add(row)
        await uow.audit.append(entity="tenant", entity_id=tenant_id, action="user_invited",
                               actor=actor, tenant_id=tenant_id,
                               payload={"email": row["email"], "role": role,
                                        "invitation_id": row["invitation_id"]})
        await uow.commit()
    return InvitationRecord.from_row(row), token


async def accept_invitation(uow: UnitOfWork, *, token: str, raw: object,
                            clock: Clock = utcnow) -> UserRecord:
    """The invitation token is the credential (it travels by email); it binds the identity
    provider's subject to a new user of the tenant, once."""
    if not isinstance(raw, dict) or not isinstance(raw.get("oidc_sub"), str) or \
            not 1 <= len(raw["oidc_sub"]) <= 255 or set(raw) - {"oidc_sub"}:
        raise ValidationFailed("body must be {\"oidc_sub\": \"...\"}", code="invalid_body",
                               field="oidc_sub")
    now = clock()
    async with uow:
        inv = await uow.invitations.by_token_hash(_token_hash(token))
        if inv is None or inv.accepted_at is not None or inv.expires_at <= now:
            raise NotFound("no open invitation for this token", code="invitation_not_found")
        if await uow.users.by_sub(raw["oidc_sub"]) is not None:
            raise Conflict("this identity already belongs to a tenant", code="user_exists")
        user = {"user_id": new_id(), "tenant_id": inv.tenant_id, "email": inv.email,
                "role": inv.role, "oidc_sub": raw["oidc_sub"], "created_at": now}
        await uow.users.add(user)
        await uow.invitations.accept(inv.invitation_id, user["user_id"], now)
        await uow.audit.append(entity="tenant", entity_id=inv.tenant_id,
                               action="user_joined", actor=raw["oidc_sub"],
                               tenant_id=inv.tenant_id,
                               payload={"user_id": user["user_id"], "role": inv.role})
        await uow.commit()
    return UserRecord.from_row(user)


async def require_feature(uow: UnitOfWork, tenant_id: str, feature: Feature) -> None:
    decision = decide(await tenant_entitlements(uow, tenant_id), feature)
    if not decision.allowed:
        raise NotEntitled(f"the tenant's plan does not include {feature.value}",
                          code=decision.reason)
