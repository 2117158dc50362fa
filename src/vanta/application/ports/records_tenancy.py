"""Typed records of the tenancy repositories: tenants, users and invitations.

Each record is built from a stored row (column name to value, as both the SQL adapter and
the in-memory fake read it back: timestamps aware, decimals exact, JSON decoded) by its
``from_row``, the one constructor both use, so the two cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TenantRecord:
    tenant_id: str
    name: str
    status: str
    created_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> TenantRecord:
        return cls(r["tenant_id"], r["name"], r["status"], r["created_at"])


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: str
    tenant_id: str
    email: str
    role: str
    oidc_sub: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> UserRecord:
        return cls(r["user_id"], r["tenant_id"], r["email"], r["role"], r["oidc_sub"],
                   r["created_at"])



@dataclass(frozen=True, slots=True)
class InvitationRecord:
    invitation_id: str
    tenant_id: str
    email: str
    role: str
    token_hash: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    user_id: str | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> InvitationRecord:
        return cls(r["invitation_id"], r["tenant_id"], r["email"], r["role"],
                   r["token_hash"], r["created_by"], r["created_at"], r["expires_at"],
                   r["accepted_at"], r["user_id"])


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    subscription_id: str
    tenant_id: str
    plan_id: str
    # Kept as stored, not parsed into SubscriptionStatus: billing reads an unknown stored
    # status as terminal (billing.common.status_of) instead of failing the read.
    status: str
    entitlements: Mapping[str, Any]  # Entitlements.to_json()
    renewal_at: datetime | None
    created_at: datetime
    provider: str  # manual | stripe | btcpay
    provider_ref: str | None
    customer_ref: str | None
    past_due_since: datetime | None
    last_event_at: datetime | None  # the newest provider event applied
    updated_at: datetime | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> SubscriptionRecord:
        return cls(r["subscription_id"], r["tenant_id"], r["plan_id"], r["status"],
                   r["entitlements"], r["renewal_at"], r["created_at"], r["provider"],
                   r["provider_ref"], r["customer_ref"], r["past_due_since"],
                   r["last_event_at"], r["updated_at"])
