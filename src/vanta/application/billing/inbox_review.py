"""The provider-event inbox as a tenant's billing readers review it (``inbox_page``).

Each event the tenant was attributed shows its provider, type, when it was received and
processed, a ``status`` and, when applying it failed, the outcome as its ``error``. The
payload is not shown: it is the provider's document, with customer details the listing does
not need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vanta.application.ports.billing import BillingUnitOfWork
from vanta.application.ports.records_billing import InboxRecord

# Outcomes that mean the event could not be applied as the provider meant it.
_FAILED = frozenset({"tenant_mismatch", "unknown_tenant", "unresolved_tenant", "unknown_plan",
                     "ignored_invalid_transition"})
# Outcomes where nothing had to change.
_IGNORED = frozenset({"not_handled", "duplicate", "stale", "superseded", "no_change",
                      "ignored_unknown_canceled", "already_activated", "no_subscription"})
MAX_PAGE = 200


@dataclass(frozen=True, slots=True)
class InboxPage:
    items: list[dict[str, Any]]
    next_before: tuple[datetime, str] | None  # where the next page starts, when there is one


def event_status(outcome: str | None, processed_at: datetime | None) -> str:
    """``pending`` / ``applied`` / ``ignored`` / ``needs_review`` / ``failed``."""
    if outcome is None or processed_at is None:
        return "pending"
    if outcome in _FAILED:
        return "failed"
    if "review" in outcome or outcome == "late_payment_unconfirmed":
        return "needs_review"
    return "ignored" if outcome in _IGNORED else "applied"


def inbox_item(r: InboxRecord) -> dict[str, Any]:
    status = event_status(r.outcome, r.processed_at)
    provider, _, event_id = r.inbox_id.partition(":")
    return {"id": r.inbox_id, "provider": r.provider or provider, "event_id": event_id,
            "type": r.event_type, "status": status, "outcome": r.outcome,
            "error": r.outcome if status == "failed" else None,
            "received_at": r.received_at.isoformat(),
            "processed_at": r.processed_at.isoformat() if r.processed_at else None}


async def inbox_page(uow: BillingUnitOfWork, *, tenant_id: str, limit: int,
                     before: tuple[datetime, str] | None = None) -> InboxPage:
    """The tenant's provider events, newest first, ``limit`` (≤ ``MAX_PAGE``) at a time."""
    limit = max(1, min(limit, MAX_PAGE))
    async with uow:
        rows: Sequence[InboxRecord] = await uow.inbox.page(tenant_id, limit=limit + 1,
                                                           before=before)
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return InboxPage([inbox_item(r) for r in rows[:limit]],
                     (last.received_at, last.inbox_id) if last is not None else None)
