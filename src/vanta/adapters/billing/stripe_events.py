"""Stripe events → small billing facts. Pure: no I/O, no ``stripe`` import.

``StripeEvent`` is a verified event (see ``StripeGateway.verify_event``). ``translate_event``
turns the ones Vanta acts on into one of three facts and returns ``None`` for every other type
(the caller still records the event id in its inbox, so a redelivery is recognised):

=================================  ==================================================
event type                          fact
=================================  ==================================================
checkout.session.completed          SubscriptionFact (``status_is_inferred=True``)
customer.subscription.created       SubscriptionFact
customer.subscription.updated       SubscriptionFact
customer.subscription.deleted       SubscriptionFact (status ``canceled``)
invoice.paid                        PaymentFact (``PAID``)
invoice.payment_succeeded           PaymentFact (``PAID``; Stripe sends it beside invoice.paid)
invoice.payment_failed              PaymentFact (``FAILED``)
charge.refunded                     RefundFact
=================================  ==================================================

Idempotent and order-safe application (the caller's half of the contract):

- de-duplicate on ``event_id`` (Stripe redelivers; the same event id is the same fact);
- a ``SubscriptionFact`` carries the full state of the subscription (*set*, never *add*), so
  applying it twice changes nothing; keep the ``event_created`` of the last fact applied per
  ``subscription_ref`` and apply a new one only if ``fact.supersedes(last_event_created)``.
  Stripe does not deliver events in order; an older ``active`` arriving after ``canceled`` is
  thus ignored instead of resurrecting the subscription. Because facts are snapshots and some
  arrive late or never, the newest one may skip states (``incomplete`` → ``past_due`` when the
  ``active`` in between comes late): check that its status is *reachable* in
  ``SUBSCRIPTION_TABLE`` rather than one legal step away;
- ``checkout.session.completed`` links tenant, customer and subscription; its status is inferred
  from ``payment_status`` (``paid`` → active, ``no_payment_required`` → trialing, ``unpaid`` →
  incomplete) and flagged ``status_is_inferred``: apply that status only when nothing
  authoritative has been applied for the subscription yet, and always take the link;
- a ``PaymentFact`` is keyed by ``(invoice_ref, outcome)``; a ``RefundFact`` carries the charge's
  cumulative ``amount_refunded_cents`` (set, not add).

Where the tenant comes from: ``client_reference_id`` / ``metadata.tenant_id`` on the checkout
session, ``metadata.tenant_id`` on the subscription (``StripeGateway.create_checkout_session``
writes both), the invoice's own metadata or the subscription metadata Stripe copies onto the
invoice (``parent.subscription_details.metadata``). A fact whose ``tenant_id`` is ``None`` must be
resolved by the caller through ``subscription_ref`` / ``customer_ref``.

Plans: the plan is read from the subscription item's price (``plans_by_price`` maps a Stripe
price id - or a legacy plan id - to our plan id), falling back to ``metadata.plan_id``.

Both the current API shape (``current_period_end`` on subscription items, invoice
``parent.subscription_details``) and the older one (those fields on the subscription / invoice
itself) are read.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from vanta.application.ports.billing import BillingEventRejected
from vanta.application.ports.billing_facts import (
    BillingFact,
    PaymentFact,
    PaymentOutcome,
    RefundFact,
    SubscriptionFact,
    SubscriptionSnapshot,
)
from vanta.domain.subscriptions import SubscriptionStatus

__all__ = [
    "FEE_KEY",
    "HANDLED_EVENT_TYPES",
    "PLAN_KEY",
    "STRIPE_STATUS",
    "TENANT_KEY",
    "BillingFact",
    "PaymentFact",
    "PaymentOutcome",
    "RefundFact",
    "StripeEvent",
    "SubscriptionFact",
    "SubscriptionSnapshot",
    "item_price_ref",
    "parse_event",
    "subscription_snapshot",
    "translate_event",
]

TENANT_KEY = "tenant_id"
PLAN_KEY = "plan_id"
FEE_KEY = "vanta_fee_key"

S = SubscriptionStatus

# Stripe's subscription statuses → ours. ``incomplete_expired`` is terminal (the first payment
# never arrived). ``paused`` (a trial ended without a payment method) grants nothing and can
# resume, which is what ``unpaid`` means here; note the domain table has no trialing → unpaid
# edge, so a caller applying ``transition`` will see InvalidTransition for a paused trial.
STRIPE_STATUS: Mapping[str, SubscriptionStatus] = {
    "incomplete": S.INCOMPLETE,
    "incomplete_expired": S.CANCELED,
    "trialing": S.TRIALING,
    "active": S.ACTIVE,
    "past_due": S.PAST_DUE,
    "unpaid": S.UNPAID,
    "canceled": S.CANCELED,
    "paused": S.UNPAID,
}

_CHECKOUT_STATUS: Mapping[str, SubscriptionStatus] = {
    "paid": S.ACTIVE,
    "no_payment_required": S.TRIALING,
    "unpaid": S.INCOMPLETE,
}


@dataclass(frozen=True, slots=True)
class StripeEvent:
    """A verified Stripe event as plain data."""

    id: str
    type: str
    created: datetime
    object: dict[str, Any]
    api_version: str | None = None
    livemode: bool = False
    previous_attributes: dict[str, Any] | None = None




@dataclass(frozen=True, slots=True)
class _Ctx:
    event: StripeEvent
    plans_by_price: Mapping[str, str] = field(default_factory=dict)


# -- parsing the envelope -------------------------------------------------------------------

def parse_event(payload: bytes | str) -> StripeEvent:
    """The event envelope as a ``StripeEvent``; refuses anything not shaped like one.

    Does not verify the signature: use ``StripeGateway.verify_event`` for untrusted input.
    """
    try:
        doc = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise BillingEventRejected("malformed", "body is not JSON") from None
    if not isinstance(doc, dict):
        raise BillingEventRejected("malformed", "event must be a JSON object")
    ev_id, ev_type, created = doc.get("id"), doc.get("type"), doc.get("created")
    data = doc.get("data")
    if not isinstance(ev_id, str) or not ev_id or not isinstance(ev_type, str) or not ev_type:
        raise BillingEventRejected("malformed", "event needs a string id and type")
    if isinstance(created, bool) or not isinstance(created, int) or created < 0:
        raise BillingEventRejected("malformed", "event needs an integer created timestamp")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise BillingEventRejected("malformed", "event needs data.object")
    prev = data.get("previous_attributes")
    api_version = doc.get("api_version")
    return StripeEvent(
        id=ev_id, type=ev_type, created=_ts(created), object=data["object"],
        api_version=api_version if isinstance(api_version, str) else None,
        livemode=doc.get("livemode") is True,
        previous_attributes=prev if isinstance(prev, dict) else None,
    )


# -- translation ----------------------------------------------------------------------------

def translate_event(event: StripeEvent, *,
                    plans_by_price: Mapping[str, str] | None = None) -> BillingFact | None:
    """The fact ``event`` states, or ``None`` for an event type Vanta does not act on.

    Raises ``BillingEventRejected("malformed")`` when a handled event lacks what it must carry.
    """
    handler = _HANDLERS.get(event.type)
    if handler is None:
        return None
    return handler(_Ctx(event, plans_by_price or {}))


def subscription_snapshot(obj: Mapping[str, Any], *,
                          plans_by_price: Mapping[str, str] | None = None,
                          ) -> SubscriptionSnapshot:
    """A Stripe subscription object (API response or event payload) as a snapshot."""
    sub_id = _str(obj.get("id"))
    if sub_id is None:
        raise BillingEventRejected("malformed", "subscription without id")
    status = _stripe_status(obj.get("status"))
    item = _first_item(obj)
    price_ref = item_price_ref(item)
    metadata = _dict(obj.get("metadata"))
    return SubscriptionSnapshot(
        tenant_id=_str(metadata.get(TENANT_KEY)),
        subscription_ref=sub_id,
        customer_ref=_ref(obj.get("customer")),
        status=status,
        plan_id=_plan_for(price_ref, metadata, plans_by_price or {}),
        current_period_end=_ts_opt(obj.get("current_period_end"))
        or _ts_opt(item.get("current_period_end")),
        cancel_at_period_end=obj.get("cancel_at_period_end") is True,
        price_ref=price_ref,
    )


def _on_checkout_completed(ctx: _Ctx) -> SubscriptionFact | None:
    obj = ctx.event.object
    if obj.get("mode") != "subscription":
        return None
    sub_ref = _ref(obj.get("subscription"))
    if sub_ref is None:
        raise BillingEventRejected("malformed", "completed subscription checkout without "
                                   "a subscription")
    metadata = _dict(obj.get("metadata"))
    status = _CHECKOUT_STATUS.get(str(obj.get("payment_status")))
    if status is None:
        raise BillingEventRejected("malformed", "unknown checkout payment_status")
    return SubscriptionFact(
        tenant_id=_str(obj.get("client_reference_id")) or _str(metadata.get(TENANT_KEY)),
        subscription_ref=sub_ref,
        customer_ref=_ref(obj.get("customer")),
        status=status,
        plan_id=_str(metadata.get(PLAN_KEY)),
        current_period_end=None,
        event_created=ctx.event.created,
        event_id=ctx.event.id,
        event_type=ctx.event.type,
        status_is_inferred=True,
    )


def _on_subscription(ctx: _Ctx) -> SubscriptionFact:
    snap = subscription_snapshot(ctx.event.object, plans_by_price=ctx.plans_by_price)
    status = S.CANCELED if ctx.event.type == "customer.subscription.deleted" else snap.status
    return SubscriptionFact(
        tenant_id=snap.tenant_id,
        subscription_ref=snap.subscription_ref,
        customer_ref=snap.customer_ref,
        status=status,
        plan_id=snap.plan_id,
        current_period_end=snap.current_period_end,
        event_created=ctx.event.created,
        event_id=ctx.event.id,
        event_type=ctx.event.type,
        cancel_at_period_end=snap.cancel_at_period_end,
    )


def _on_invoice(ctx: _Ctx) -> PaymentFact:
    obj = ctx.event.object
    inv_id = _str(obj.get("id"))
    if inv_id is None:
        raise BillingEventRejected("malformed", "invoice without id")
    paid = ctx.event.type != "invoice.payment_failed"
    metadata = _dict(obj.get("metadata"))
    parent_details = _dict(_dict(obj.get("parent")).get("subscription_details"))
    legacy_details = _dict(obj.get("subscription_details"))
    sub_ref = _ref(parent_details.get("subscription")) or _ref(obj.get("subscription"))
    sub_meta = _dict(parent_details.get("metadata")) or _dict(legacy_details.get("metadata"))
    amount = _int(obj.get("amount_paid")) if paid else _int(obj.get("amount_due"))
    if amount is None:
        amount = _int(obj.get("total")) or 0
    return PaymentFact(
        invoice_ref=inv_id,
        customer_ref=_ref(obj.get("customer")),
        subscription_ref=sub_ref,
        tenant_id=_str(metadata.get(TENANT_KEY)) or _str(sub_meta.get(TENANT_KEY)),
        outcome=PaymentOutcome.PAID if paid else PaymentOutcome.FAILED,
        amount_cents=amount,
        currency=_str(obj.get("currency")),
        event_created=ctx.event.created,
        event_id=ctx.event.id,
        event_type=ctx.event.type,
        fee_key=_str(metadata.get(FEE_KEY)),
        billing_reason=_str(obj.get("billing_reason")),
        attempt_count=_int(obj.get("attempt_count")),
        next_payment_attempt=_ts_opt(obj.get("next_payment_attempt")),
    )


def _on_charge_refunded(ctx: _Ctx) -> RefundFact:
    obj = ctx.event.object
    charge_id = _str(obj.get("id"))
    amount = _int(obj.get("amount"))
    refunded = _int(obj.get("amount_refunded"))
    if charge_id is None or amount is None or refunded is None:
        raise BillingEventRejected("malformed", "charge without id or amounts")
    return RefundFact(
        charge_ref=charge_id,
        payment_intent_ref=_ref(obj.get("payment_intent")),
        customer_ref=_ref(obj.get("customer")),
        invoice_ref=_ref(obj.get("invoice")),
        tenant_id=_str(_dict(obj.get("metadata")).get(TENANT_KEY)),
        amount_cents=amount,
        amount_refunded_cents=refunded,
        currency=_str(obj.get("currency")),
        fully_refunded=obj.get("refunded") is True or refunded >= amount,
        event_created=ctx.event.created,
        event_id=ctx.event.id,
        event_type=ctx.event.type,
    )


_HANDLERS = {
    "checkout.session.completed": _on_checkout_completed,
    "customer.subscription.created": _on_subscription,
    "customer.subscription.updated": _on_subscription,
    "customer.subscription.deleted": _on_subscription,
    "invoice.paid": _on_invoice,
    "invoice.payment_succeeded": _on_invoice,
    "invoice.payment_failed": _on_invoice,
    "charge.refunded": _on_charge_refunded,
}

HANDLED_EVENT_TYPES: frozenset[str] = frozenset(_HANDLERS)


# -- field helpers --------------------------------------------------------------------------

def _stripe_status(value: object) -> SubscriptionStatus:
    status = STRIPE_STATUS.get(value) if isinstance(value, str) else None
    if status is None:
        raise BillingEventRejected("malformed", f"unknown subscription status {value!r}")
    return status


def _first_item(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    items = _dict(obj.get("items")).get("data")
    if isinstance(items, list) and items and isinstance(items[0], dict):
        return items[0]
    return {}


def item_price_ref(item: Mapping[str, Any]) -> str | None:
    """The item's price id, or its legacy plan id (a plan id is valid as a price id)."""
    return _ref(item.get("price")) or _ref(item.get("plan"))


def _plan_for(price_ref: str | None, metadata: Mapping[str, Any],
              plans_by_price: Mapping[str, str]) -> str | None:
    if price_ref is not None and price_ref in plans_by_price:
        return plans_by_price[price_ref]
    return _str(metadata.get(PLAN_KEY))


def _ref(value: object) -> str | None:
    """An id field that may be a bare id or an expanded object."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _ts_opt(value: object) -> datetime | None:
    n = _int(value)
    return _ts(n) if n is not None and n > 0 else None
