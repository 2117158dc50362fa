"""Provider webhooks in (``receive_stripe`` / ``receive_btcpay``).

verify the signature (``BillingEventRejected`` → the route answers 400 with its reason) →
insert into ``billing_inbox`` keyed ``provider:event id`` (a redelivery is a no-op) → apply
and commit in the same transaction, recording the outcome on the inbox row. After the commit
the tenant's cached entitlements are dropped when its subscription changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vanta.application.billing.btcpay_payments import apply_btcpay
from vanta.application.billing.common import UowFactory, entitlements_changed
from vanta.application.billing.facts import apply_stripe
from vanta.application.billing.providers import BillingProviders, ProviderNotConfigured
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.billing import (
    BillingUnitOfWork,
    BtcpayInvoiceFact,
    InboundEvent,
    WebhookVerifier,
)

_MAX_INBOX_ID = 300
# Outcomes where the tenant an event names was not the one it belongs to, or none exists.
_UNATTRIBUTED = frozenset({"tenant_mismatch", "unknown_tenant", "unresolved_tenant"})


@dataclass(frozen=True, slots=True)
class WebhookResult:
    inbox_id: str
    duplicate: bool
    outcome: str
    event_type: str

    def as_json(self) -> dict[str, Any]:
        return {"received": True, "duplicate": self.duplicate, "outcome": self.outcome,
                "event_type": self.event_type}


async def receive_stripe(uow_factory: UowFactory, providers: BillingProviders, body: bytes,
                         signature: str | None, *, clock: Clock = utcnow) -> WebhookResult:
    """Verify, de-duplicate and apply one Stripe event. Raises ``BillingEventRejected``."""
    if providers.stripe_events is None:
        raise ProviderNotConfigured("Stripe is not configured")
    return await _receive(uow_factory, providers, providers.stripe_events, body, signature,
                          clock)


async def receive_btcpay(uow_factory: UowFactory, providers: BillingProviders, body: bytes,
                         signature: str | None, *, clock: Clock = utcnow) -> WebhookResult:
    """Verify, de-duplicate and apply one BTCPay delivery. Raises ``BillingEventRejected``."""
    if providers.btcpay_events is None:
        raise ProviderNotConfigured("BTCPay webhooks are not configured")
    return await _receive(uow_factory, providers, providers.btcpay_events, body, signature,
                          clock)


async def _receive(uow_factory: UowFactory, providers: BillingProviders,
                   verifier: WebhookVerifier, body: bytes, signature: str | None,
                   clock: Clock) -> WebhookResult:
    event = verifier.verify(body, signature)
    inbox_id = f"{event.provider}:{event.event_id}"[:_MAX_INBOX_ID]
    now = clock()
    async with uow_factory() as uow:
        fresh = await uow.inbox.add_if_new({"inbox_id": inbox_id, "provider": event.provider,
                                            "event_type": event.event_type[:100],
                                            "received_at": now,
                                            "payload": _plain_payload(body)})
        if not fresh:
            return WebhookResult(inbox_id, True, "duplicate", event.event_type)
        tenant, outcome = await _apply(uow, providers, event, now)
        await uow.inbox.mark(inbox_id, outcome=outcome, processed_at=now,
                             tenant_id=await _attributed(uow, event, tenant, outcome))
        await uow.commit()
    if tenant is not None:
        await entitlements_changed(tenant)
    return WebhookResult(inbox_id, False, outcome, event.event_type)


async def _apply(uow: BillingUnitOfWork, providers: BillingProviders, event: InboundEvent,
                 now: datetime) -> tuple[str | None, str]:
    """``(tenant whose subscription changed or None, outcome)``."""
    fact = event.fact
    if fact is None:
        return None, "not_handled"
    if isinstance(fact, BtcpayInvoiceFact):
        return await apply_btcpay(uow, providers, fact, now)
    return await apply_stripe(uow, fact, now)


async def _attributed(uow: BillingUnitOfWork, event: InboundEvent, changed: str | None,
                      outcome: str) -> str | None:
    """The tenant whose inbox review lists the event: the one whose subscription it changed,
    else the tenant the event names, unless applying it found that name untrustworthy."""
    if changed is not None:
        return changed
    named = getattr(event.fact, "tenant_id", None)
    if not isinstance(named, str) or outcome in _UNATTRIBUTED:
        return None
    return named if await uow.tenants.get(named) is not None else None


def _plain_payload(body: bytes) -> dict[str, Any]:
    """The verified body as stored in the inbox (decimals as strings, never floats)."""
    try:
        doc = json.loads(body, parse_float=str)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {"value": doc}
