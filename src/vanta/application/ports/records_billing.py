"""Typed records the billing repositories return (``ports.billing``): provider events in the
inbox, follower cash flows and closed fee periods.

As with ``records_orders``, each record has one ``from_row`` constructor that the SQL
adapter and the in-memory fake both use. Subscription rows belong to the tenancy records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

__all__ = ["FeePeriodRecord", "FlowRecord", "InboxRecord"]


@dataclass(frozen=True, slots=True)
class InboxRecord:
    """One provider event (``inbox_id`` is ``provider:event id``); ``outcome`` and
    ``processed_at`` are set once it was applied, ``tenant_id`` when the event could be
    attributed to a tenant."""

    inbox_id: str
    provider: str
    event_type: str
    received_at: datetime
    payload: Mapping[str, Any]
    processed_at: datetime | None
    outcome: str | None
    tenant_id: str | None = None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["inbox_id"], r["provider"], r["event_type"], r["received_at"],
                   r["payload"], r["processed_at"], r["outcome"], r.get("tenant_id"))


@dataclass(frozen=True, slots=True)
class FlowRecord:
    """A deposit or withdrawal (``kind``) that moves a follower's fee mark."""

    id: int
    tenant_id: str
    follower_id: str
    kind: str
    amount: Decimal
    at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(int(r["id"]), r["tenant_id"], r["follower_id"], r["kind"], r["amount"],
                   r["at"])


@dataclass(frozen=True, slots=True)
class FeePeriodRecord:
    """One closed fee period of a follower (a ``fee_ledger`` row)."""

    id: int
    tenant_id: str
    follower_id: str
    period_label: str
    period_end: datetime
    rate: Decimal
    nav_start: Decimal
    nav_end: Decimal
    net_flows: Decimal
    pnl: Decimal
    fee: Decimal
    hwm_before: Decimal
    hwm_after: Decimal
    invoice_provider: str | None
    invoice_ref: str | None
    created_at: datetime
    refunded: Decimal = Decimal(0)  # refunded of the period's invoice, in total

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(int(r["id"]), r["tenant_id"], r["follower_id"], r["period_label"],
                   r["period_end"], r["rate"], r["nav_start"], r["nav_end"], r["net_flows"],
                   r["pnl"], r["fee"], r["hwm_before"], r["hwm_after"], r["invoice_provider"],
                   r["invoice_ref"], r["created_at"], Decimal(r.get("refunded") or 0))
