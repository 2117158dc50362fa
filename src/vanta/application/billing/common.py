"""Helpers shared by the billing use cases: status reading, the stored entitlements
document, audit rows and the entitlements-cache drop after a commit."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from vanta.application import entitlements_cache
from vanta.application.clock import iso
from vanta.application.ports.billing import BillingUnitOfWork
from vanta.domain.entitlements import PLANS, entitlements_for
from vanta.domain.subscriptions import SubscriptionStatus

log = logging.getLogger("vanta.billing")

S = SubscriptionStatus
UowFactory = Callable[[], BillingUnitOfWork]

ENTITLED = frozenset({S.TRIALING, S.ACTIVE})
HOLDABLE = frozenset({S.TRIALING, S.ACTIVE, S.PAST_DUE})
RECOVERABLE_BY_PAYMENT = frozenset({S.PAST_DUE, S.UNPAID, S.INCOMPLETE})
PLAN_IDS = frozenset(p.value for p in PLANS)


def status_of(value: object) -> SubscriptionStatus:
    try:
        return SubscriptionStatus(str(value))
    except ValueError:
        return S.CANCELED  # an unknown stored status is treated as terminal, never as paid


def utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)


def parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def not_older(at: datetime, last: datetime | None) -> bool:
    """Same rule as ``SubscriptionFact.supersedes``: equal timestamps apply."""
    return last is None or at >= last


def billing_doc(row: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``billing`` section (refund hold, last payment) of the stored entitlements."""
    doc = row.get("entitlements") if row else None
    section = doc.get("billing") if isinstance(doc, Mapping) else None
    return dict(section) if isinstance(section, Mapping) else {}


def entitlements_doc(plan_id: str, billing: Mapping[str, Any]) -> dict[str, Any]:
    doc = entitlements_for(plan_id).to_json()
    clean = {k: v for k, v in billing.items() if v is not None}
    if clean:
        doc["billing"] = clean
    return doc


def past_due_since(cur: SubscriptionStatus, target: SubscriptionStatus,
                   existing: datetime | None, at: datetime) -> datetime | None:
    if target is not S.PAST_DUE:
        return None
    if cur is S.PAST_DUE and existing is not None:
        return existing
    return utc(at)


def row_summary(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    renewal = row.get("renewal_at")
    pds = row.get("past_due_since")
    return {"provider": row.get("provider"), "plan": row.get("plan_id"),
            "status": row.get("status"), "provider_ref": row.get("provider_ref"),
            "renewal_at": iso(renewal) if renewal else None,
            "past_due_since": iso(pds) if pds else None}


async def entitlements_changed(tenant_id: str) -> None:
    """After a commit that changed what a tenant may do: drop its cached entitlements
    (Redis in production), so the next call decides on the new grant."""
    await entitlements_cache.cache().invalidate(tenant_id)
    log.info("entitlements changed for tenant %s", tenant_id)


async def audit(uow: BillingUnitOfWork, *, tenant_id: str | None, entity_id: str, action: str,
                actor: str, payload: Mapping[str, Any]) -> None:
    await uow.audit.append(entity="subscription", entity_id=entity_id[:64], action=action,
                           actor=actor, tenant_id=tenant_id, payload=dict(payload))
