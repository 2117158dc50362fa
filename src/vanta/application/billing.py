"""Subscriptions through Stripe and BTCPay: plan changes out, verified provider events in.

Out (``change_plan``)
---------------------
* Stripe, tenant without a live Stripe subscription: a Checkout Session for the plan's price
  (the tenant's earlier Stripe customer is reused). The subscription appears through webhooks.
* Stripe, tenant with one: its item moves to the new price with ``create_prorations`` (credit
  for the unused time, the rest on the next invoice). The local row changes when Stripe's
  ``customer.subscription.updated`` arrives: webhooks are the only writer of provider-backed
  subscription state, so a reply and an event can never disagree about ordering.
* BTCPay: an invoice for the plan's price (``BTCPAY_PRICES``, USD) paying for
  ``BTCPAY_PERIOD`` (30 days). BTCPay has no recurring subscriptions and no proration: a
  settled invoice starts a period at settlement, or extends the running BTCPay period from its
  end, and the plan becomes the one paid for.

The tenant comes only from the caller's token. A ``subscription_ref`` in the body must be the
tenant's own; anything else is ``404 subscription_not_found`` and nothing is sent to Stripe.

In (``receive_stripe`` / ``receive_btcpay``)
--------------------------------------------
verify the signature (``BillingEventRejected`` → the route answers 400 with its reason) →
insert into ``billing_inbox`` keyed ``provider:event id`` (a redelivery is a no-op) → apply
and commit in the same transaction, recording the outcome on the inbox row.

Application rules:

* ``SubscriptionFact`` (a snapshot): applied only if not older than the row's
  ``last_event_at``; otherwise recorded as ``stale``. The new status must be *reachable* in
  ``SUBSCRIPTION_TABLE`` from the current one (late events skip states); an impossible move
  (anything out of ``canceled``) is recorded as ``ignored_invalid_transition``. Checkout's
  inferred status is applied only while nothing authoritative has been (it never sets
  ``last_event_at``); its customer link is always taken. No row is created for a subscription
  first heard of as canceled.
* ``PaymentFact``: paid moves ``past_due``/``unpaid``/``incomplete`` to ``active``; failed moves
  ``active``/``trialing`` to ``past_due``. Fee invoices (``vanta_fee_key``) are recorded only.
* ``RefundFact`` (decision): partial refunds are recorded and audited, features stay. A *full*
  refund of a subscription charge takes the paid period back: the subscription moves to
  ``unpaid`` (no paid features) and is put on a *refund hold*, audited with ``review: true``.
  While held, Stripe snapshots saying ``active`` do not restore features (Stripe keeps a
  refunded subscription active); the next ``invoice.paid`` for the subscription after the
  refund lifts the hold, and an operator can always re-grant. A full refund is *not* a hold
  when it is identifiably not the current period's payment: its invoice is a fee invoice we
  issued, or a different invoice than the last one paid, or a later payment already arrived;
  when the charge names no invoice (current Stripe API versions) and its amount equals one of
  the tenant's invoiced performance fees, it is recorded with ``review: true`` and no hold.
* ``past_due_since`` is the provider's event time when entering ``past_due`` (so the grace
  period runs from when the payment failed, not from when we heard of it) and is cleared on
  leaving. Entitlements are recomputed from the plan (``entitlements_for(plan).to_json()``);
  the stored document also carries a ``billing`` section (refund hold, last payment) that
  ``Entitlements.from_json`` ignores.
* BTCPay: ``InvoiceSettled`` activates; expired/invalid never do (audited, and flagged when
  money came in); a late payment (``afterExpiration``) activates once it is *confirmed*
  (``InvoicePaymentSettled``) and covers the price, flagged ``review: true`` in the audit; an
  unconfirmed or short late payment is only flagged. Each invoice activates at most once (an
  ``btcpay:activated:<invoice>`` marker row in the inbox), so an operator marking a late-paid
  invoice settled does not add a second period.
* Periods: ``expire_btcpay_periods`` (run it from the scheduler) moves a BTCPay subscription
  whose period ended to ``past_due`` (grace from ``renewal_at``) and, once the grace has
  passed, to ``unpaid``.

Every applied change writes an audit event (entity ``subscription``) and, after its commit,
drops the tenant's cached entitlements (``vanta.application.entitlements_cache``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncConnection

from vanta.adapters.billing.btcpay import (
    BtcpayClient,
    BtcpayEvent,
    BtcpayInvoiceFact,
    BtcpayOutcome,
    btcpay_fact,
    verify_webhook,
)
from vanta.adapters.billing.stripe_events import (
    BillingFact,
    PaymentFact,
    PaymentOutcome,
    RefundFact,
    SubscriptionFact,
)
from vanta.adapters.billing.stripe_gateway import StripeGateway
from vanta.adapters.db.billing_repositories import (
    BillingSubscriptionRepository,
    FeeLedgerRepository,
    InboxRepository,
)
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.application import entitlements_cache
from vanta.application.clock import Clock, iso, utcnow
from vanta.config import Settings
from vanta.domain.entitlements import PLANS, PlanId, entitlements_for, get_plan
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.ids import new_id
from vanta.domain.subscriptions import (
    DEFAULT_GRACE,
    SUBSCRIPTION_TABLE,
    SubscriptionStatus,
)

log = logging.getLogger("vanta.billing")

S = SubscriptionStatus
UowFactory = Callable[[], SqlUnitOfWork]

PROVIDERS: Final = ("stripe", "btcpay")
# BTCPay price table (USD per 30-day period). Stripe prices live in Stripe and are mapped by
# ``Settings.stripe_price_ids``; keep the two in step when prices change.
BTCPAY_PRICES: Final[Mapping[str, tuple[Decimal, str]]] = {
    PlanId.CORE.value: (Decimal("19.00"), "USD"),
    PlanId.PRO.value: (Decimal("49.00"), "USD"),
    PlanId.INSTITUTIONAL.value: (Decimal("499.00"), "USD"),
}
BTCPAY_PERIOD: Final = timedelta(days=30)
STRIPE_PRORATION: Final = "create_prorations"
_ENTITLED = frozenset({S.TRIALING, S.ACTIVE})
_HOLDABLE = frozenset({S.TRIALING, S.ACTIVE, S.PAST_DUE})
_RECOVERABLE_BY_PAYMENT = frozenset({S.PAST_DUE, S.UNPAID, S.INCOMPLETE})


class ProviderNotConfigured(Conflict):
    code = "billing_provider_not_configured"


@dataclass
class BillingProviders:
    """The configured payment providers and billing terms; ``None`` = not configured."""

    stripe: StripeGateway | None = None
    btcpay: BtcpayClient | None = None
    btcpay_store_id: str | None = None
    btcpay_webhook_secret: str | None = None
    btcpay_prices: Mapping[str, tuple[Decimal, str]] = field(
        default_factory=lambda: dict(BTCPAY_PRICES))
    btcpay_period: timedelta = BTCPAY_PERIOD
    grace: timedelta = DEFAULT_GRACE
    public_app_url: str = "http://127.0.0.1:8000"
    fee_currency: str = "usd"
    stripe_tolerance: int = 300

    @classmethod
    def from_settings(cls, s: Settings) -> BillingProviders:
        """Whatever is fully configured; a half-configured provider is disabled, with a
        warning, rather than failing the whole API at start-up."""
        stripe_gw: StripeGateway | None = None
        if s.stripe_api_key and s.stripe_webhook_secret:
            stripe_gw = StripeGateway(s.stripe_api_key, webhook_secret=s.stripe_webhook_secret,
                                      price_ids=s.stripe_price_ids, api_base=s.stripe_api_base)
        elif s.stripe_api_key or s.stripe_webhook_secret:
            log.warning("Stripe needs both VANTA_STRIPE_API_KEY and VANTA_STRIPE_WEBHOOK_SECRET;"
                        " Stripe billing is disabled")
        btcpay: BtcpayClient | None = None
        if s.btcpay_url and s.btcpay_api_key and s.btcpay_store_id:
            btcpay = BtcpayClient(s.btcpay_url, s.btcpay_api_key)
        elif s.btcpay_url or s.btcpay_api_key or s.btcpay_store_id:
            log.warning("BTCPay needs VANTA_BTCPAY_URL, _API_KEY and _STORE_ID; BTCPay invoices "
                        "are disabled")
        return cls(stripe=stripe_gw, btcpay=btcpay, btcpay_store_id=s.btcpay_store_id,
                   btcpay_webhook_secret=s.btcpay_webhook_secret,
                   grace=timedelta(days=s.billing_grace_days),
                   public_app_url=s.public_app_url.rstrip("/"))

    async def aclose(self) -> None:
        if self.stripe is not None:
            await self.stripe.aclose()
        if self.btcpay is not None:
            await self.btcpay.aclose()


@dataclass(frozen=True, slots=True)
class WebhookResult:
    inbox_id: str
    duplicate: bool
    outcome: str
    event_type: str

    def as_json(self) -> dict[str, Any]:
        return {"received": True, "duplicate": self.duplicate, "outcome": self.outcome,
                "event_type": self.event_type}


# -- helpers --------------------------------------------------------------------------------

def uow_conn(uow: SqlUnitOfWork) -> AsyncConnection:
    """The unit of work's connection, for the billing repositories.

    ``SqlUnitOfWork`` exposes no public connection yet, so this falls back to ``_conn``.
    """
    conn = getattr(uow, "conn", None)
    if conn is None:
        conn = uow._conn
    if conn is None:
        raise RuntimeError("use the billing repositories inside `async with uow`")
    return conn


def reachable(src: SubscriptionStatus, dst: SubscriptionStatus) -> bool:
    """Whether ``dst`` can follow ``src`` through zero or more allowed moves."""
    if src == dst:
        return True
    seen, todo = {src}, deque([src])
    while todo:
        for nxt in SUBSCRIPTION_TABLE.allowed(todo.popleft()):
            if nxt == dst:
                return True
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return False


def _status(value: object) -> SubscriptionStatus:
    try:
        return SubscriptionStatus(str(value))
    except ValueError:
        return S.CANCELED  # an unknown stored status is treated as terminal, never as paid


def _utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC)


def _parse_iso(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _not_older(at: datetime, last: datetime | None) -> bool:
    """Same rule as ``SubscriptionFact.supersedes``: equal timestamps apply."""
    return last is None or at >= last


def _billing_doc(row: Mapping[str, Any] | None) -> dict[str, Any]:
    doc = row.get("entitlements") if row else None
    section = doc.get("billing") if isinstance(doc, Mapping) else None
    return dict(section) if isinstance(section, Mapping) else {}


def _entitlements_doc(plan_id: str, billing: Mapping[str, Any]) -> dict[str, Any]:
    doc = entitlements_for(plan_id).to_json()
    clean = {k: v for k, v in billing.items() if v is not None}
    if clean:
        doc["billing"] = clean
    return doc


def _past_due_since(cur: SubscriptionStatus, target: SubscriptionStatus,
                    existing: datetime | None, at: datetime) -> datetime | None:
    if target is not S.PAST_DUE:
        return None
    if cur is S.PAST_DUE and existing is not None:
        return existing
    return _utc(at)


def _row_summary(row: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    renewal = row.get("renewal_at")
    pds = row.get("past_due_since")
    return {"provider": row.get("provider"), "plan": row.get("plan_id"),
            "status": row.get("status"), "provider_ref": row.get("provider_ref"),
            "renewal_at": iso(renewal) if renewal else None,
            "past_due_since": iso(pds) if pds else None}


def _plain_payload(body: bytes) -> dict[str, Any]:
    """The verified body as stored in the inbox (decimals as strings, never floats)."""
    try:
        doc = json.loads(body, parse_float=str)
    except (ValueError, UnicodeDecodeError):
        return {}
    return doc if isinstance(doc, dict) else {"value": doc}


async def _entitlements_changed(tenant_id: str) -> None:
    """After a commit that changed what a tenant may do: drop its cached entitlements
    (Redis in production), so the next call decides on the new grant."""
    await entitlements_cache.cache().invalidate(tenant_id)
    log.info("entitlements changed for tenant %s", tenant_id)


async def _audit(uow: SqlUnitOfWork, *, tenant_id: str | None, entity_id: str, action: str,
                 actor: str, payload: Mapping[str, Any]) -> None:
    await uow.audit.append(entity="subscription", entity_id=entity_id[:64], action=action,
                           actor=actor, tenant_id=tenant_id, payload=dict(payload))


# -- plan changes ---------------------------------------------------------------------------

def parse_change_plan(raw: object) -> tuple[str, str, str | None]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - {"plan", "provider", "subscription_ref"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    if raw.get("plan") is None:
        raise ValidationFailed("plan is required", code="missing_field", field="plan")
    try:
        plan = get_plan(raw["plan"]).plan_id.value
    except ValidationFailed as e:
        raise ValidationFailed(e.message, code=e.code, field="plan") from None
    provider = raw.get("provider", "stripe")
    if provider not in PROVIDERS:
        raise ValidationFailed("provider must be stripe or btcpay", code="invalid_provider",
                               field="provider")
    ref = raw.get("subscription_ref")
    if ref is not None and (not isinstance(ref, str) or not 1 <= len(ref) <= 255):
        raise ValidationFailed("subscription_ref must be a string", code="invalid_body",
                               field="subscription_ref")
    return plan, str(provider), ref


async def change_plan(uow_factory: UowFactory, providers: BillingProviders, *, tenant_id: str,
                      raw: object, actor: str, idempotency_key: str | None = None,
                      clock: Clock = utcnow) -> tuple[bool, dict[str, Any]]:
    """``(created, body)``: created is True for a new checkout session or invoice (201) and
    False for a change to an existing subscription (200)."""
    plan, provider, ref = parse_change_plan(raw)
    async with uow_factory() as uow:
        current = await uow.subscriptions.current(tenant_id)
        if ref is not None:
            named = await uow.subscriptions.by_provider_ref(ref)
            if named is None or named["tenant_id"] != tenant_id:
                raise NotFound(f"subscription {ref} not found", code="subscription_not_found")
    if provider == "stripe":
        return await _change_stripe(uow_factory, providers, tenant_id=tenant_id, plan=plan,
                                    current=current, actor=actor,
                                    idempotency_key=idempotency_key)
    return await _change_btcpay(uow_factory, providers, tenant_id=tenant_id, plan=plan,
                                current=current, actor=actor)


def _stripe_key(kind: str, *parts: str | None) -> str | None:
    """A Stripe idempotency key derived from the API request's ``Idempotency-Key`` (so a
    retried request that reaches Stripe twice acts once); hashed when it would be long."""
    if not parts or parts[-1] is None:
        return None
    key = ":".join([kind, *(p or "" for p in parts)])
    return key if len(key) <= 200 else f"{kind}:{hashlib.sha256(key.encode()).hexdigest()}"


async def _change_stripe(uow_factory: UowFactory, providers: BillingProviders, *,
                         tenant_id: str, plan: str, current: Mapping[str, Any] | None,
                         actor: str, idempotency_key: str | None,
                         ) -> tuple[bool, dict[str, Any]]:
    gw = providers.stripe
    if gw is None:
        raise ProviderNotConfigured("Stripe is not configured")
    live = (current is not None and current["provider"] == "stripe"
            and current.get("provider_ref") and _status(current["status"]) is not S.CANCELED)
    if live:
        assert current is not None
        sub_ref = str(current["provider_ref"])
        snap = await gw.get_subscription(sub_ref)
        if snap.tenant_id is not None and snap.tenant_id != tenant_id:
            log.warning("Stripe subscription %s names another tenant; not changed", sub_ref)
            raise NotFound(f"subscription {sub_ref} not found", code="subscription_not_found")
        key = _stripe_key("chg", tenant_id, sub_ref, plan, idempotency_key)
        after = await gw.change_plan(sub_ref, plan, STRIPE_PRORATION, idempotency_key=key)
        changed = snap.plan_id != after.plan_id or snap.price_ref != after.price_ref
        async with uow_factory() as uow:
            await _audit(uow, tenant_id=tenant_id, entity_id=current["subscription_id"],
                         action="plan_change_requested", actor=actor,
                         payload={"provider": "stripe", "subscription_ref": sub_ref,
                                  "from": snap.plan_id, "to": plan, "sent": changed,
                                  "proration": STRIPE_PRORATION})
            await uow.commit()
        return False, {
            "provider": "stripe", "action": "plan_changed" if changed else "unchanged",
            "subscription_ref": sub_ref, "plan": after.plan_id or plan,
            "status": after.status.value, "proration": STRIPE_PRORATION,
            # the local subscription follows Stripe's customer.subscription.updated
            "applies": "on_provider_event",
        }
    customer = current.get("customer_ref") if current is not None and \
        current["provider"] == "stripe" else None
    key = _stripe_key("checkout", tenant_id, plan, idempotency_key)
    base = providers.public_app_url
    session_id, url = await gw.create_checkout_session(
        customer, tenant_id, plan, f"{base}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
        f"{base}/billing/cancel", idempotency_key=key)
    async with uow_factory() as uow:
        await _audit(uow, tenant_id=tenant_id,
                     entity_id=current["subscription_id"] if current else tenant_id,
                     action="checkout_started", actor=actor,
                     payload={"provider": "stripe", "plan": plan, "session_id": session_id,
                              "customer_ref": customer})
        await uow.commit()
    return True, {"provider": "stripe", "action": "checkout", "plan": plan,
                  "session_id": session_id, "checkout_url": url}


async def _change_btcpay(uow_factory: UowFactory, providers: BillingProviders, *,
                         tenant_id: str, plan: str, current: Mapping[str, Any] | None,
                         actor: str) -> tuple[bool, dict[str, Any]]:
    client, store = providers.btcpay, providers.btcpay_store_id
    if client is None or not store:
        raise ProviderNotConfigured("BTCPay is not configured")
    if current is not None and current["provider"] == "stripe" and \
            _status(current["status"]) in _HOLDABLE:
        raise Conflict("the tenant has a live Stripe subscription; cancel it before paying "
                       "with BTCPay", code="stripe_subscription_active")
    price = providers.btcpay_prices.get(plan)
    if price is None:
        raise ValidationFailed(f"no BTCPay price for plan {plan}", code="unknown_plan",
                               field="plan")
    amount, currency = price
    # One order per tenant, plan and paid-up point: retrying before payment reuses the open
    # invoice; once a period is paid (renewal_at moves) the next request is a new order.
    anchor = "new"
    if current is not None and current["provider"] == "btcpay" and current.get("renewal_at"):
        anchor = iso(current["renewal_at"])
    digest = hashlib.sha256(f"{tenant_id}|{plan}|{anchor}".encode()).hexdigest()[:16]
    order_id = f"vanta-{plan}-{digest}"
    period_days = providers.btcpay_period.days
    metadata = {"tenant_id": tenant_id, "plan_id": plan, "amount": format(amount, "f"),
                "currency": currency, "period_days": period_days}
    invoice_id, link = await client.create_invoice(
        store, amount, currency, order_id, metadata,
        f"{providers.public_app_url}/billing/success")
    async with uow_factory() as uow:
        await _audit(uow, tenant_id=tenant_id,
                     entity_id=current["subscription_id"] if current else tenant_id,
                     action="btcpay_invoice_created", actor=actor,
                     payload={"provider": "btcpay", "plan": plan, "invoice_id": invoice_id,
                              "amount": format(amount, "f"), "currency": currency,
                              "order_id": order_id})
        await uow.commit()
    return True, {"provider": "btcpay", "action": "invoice", "plan": plan,
                  "invoice_id": invoice_id, "checkout_url": link,
                  "amount": format(amount, "f"), "currency": currency,
                  "period_days": period_days}


# -- inbound: Stripe ------------------------------------------------------------------------

async def receive_stripe(uow_factory: UowFactory, providers: BillingProviders, body: bytes,
                         signature: str | None, *, clock: Clock = utcnow) -> WebhookResult:
    """Verify, de-duplicate and apply one Stripe event. Raises ``BillingEventRejected``."""
    gw = providers.stripe
    if gw is None:
        raise ProviderNotConfigured("Stripe is not configured")
    event = gw.verify_event(body, signature, providers.stripe_tolerance)
    fact = gw.translate(event)
    inbox_id = f"stripe:{event.id}"
    now = clock()
    async with uow_factory() as uow:
        inbox = InboxRepository(uow_conn(uow))
        fresh = await inbox.add_if_new({"inbox_id": inbox_id, "provider": "stripe",
                                        "event_type": event.type[:100], "received_at": now,
                                        "payload": _plain_payload(body)})
        if not fresh:
            return WebhookResult(inbox_id, True, "duplicate", event.type)
        tenant, outcome = await _apply_stripe(uow, fact, now)
        await inbox.mark(inbox_id, outcome=outcome, processed_at=now)
        await uow.commit()
    if tenant is not None:
        await _entitlements_changed(tenant)
    return WebhookResult(inbox_id, False, outcome, event.type)


async def _apply_stripe(uow: SqlUnitOfWork, fact: BillingFact | None, now: datetime
                        ) -> tuple[str | None, str]:
    """``(tenant whose subscription changed or None, outcome)``."""
    if fact is None:
        return None, "not_handled"
    if isinstance(fact, SubscriptionFact):
        return await _apply_subscription_fact(uow, fact, now)
    if isinstance(fact, PaymentFact):
        return await _apply_payment_fact(uow, fact, now)
    return await _apply_refund_fact(uow, fact, now)


async def _resolve_row(uow: SqlUnitOfWork, *, subscription_ref: str | None,
                       customer_ref: str | None) -> dict[str, Any] | None:
    subs = BillingSubscriptionRepository(uow_conn(uow))
    if subscription_ref:
        row = await subs.by_provider_ref_for_update(subscription_ref)
        if row is not None:
            return row
    if customer_ref:
        return await subs.by_customer_ref(customer_ref)
    return None


async def _apply_subscription_fact(uow: SqlUnitOfWork, fact: SubscriptionFact, now: datetime,
                                   ) -> tuple[str | None, str]:
    subs = BillingSubscriptionRepository(uow_conn(uow))
    row = await subs.by_provider_ref_for_update(fact.subscription_ref)
    if row is not None:
        if fact.tenant_id is not None and fact.tenant_id != row["tenant_id"]:
            log.warning("Stripe event %s names tenant %s for a subscription of another tenant;"
                        " not applied", fact.event_id, fact.tenant_id)
            return None, "tenant_mismatch"
        return await _update_from_fact(uow, row, fact, now)

    tenant_id = fact.tenant_id
    if tenant_id is None and fact.customer_ref:
        known = await subs.by_customer_ref(fact.customer_ref)
        tenant_id = known["tenant_id"] if known else None
    if tenant_id is None:
        return None, "unresolved_tenant"
    if await uow.tenants.get(tenant_id) is None:
        return None, "unknown_tenant"
    if fact.status is S.CANCELED:
        return None, "ignored_unknown_canceled"
    if fact.plan_id not in {p.value for p in PLANS}:
        return None, "unknown_plan"
    current = await subs.current_for_update(tenant_id)
    if current is not None and current["provider"] == "stripe" \
            and _status(current["status"]) is not S.CANCELED \
            and current.get("last_event_at") is not None \
            and fact.event_created < current["last_event_at"]:
        return None, "superseded"  # an older subscription of the tenant, speaking late
    assert fact.plan_id is not None
    row = {
        "subscription_id": new_id(), "tenant_id": tenant_id, "plan_id": fact.plan_id,
        "status": fact.status.value, "entitlements": _entitlements_doc(fact.plan_id, {}),
        "renewal_at": _utc(fact.current_period_end) if fact.current_period_end else None,
        "created_at": now, "provider": "stripe", "provider_ref": fact.subscription_ref,
        "customer_ref": fact.customer_ref,
        "past_due_since": _utc(fact.event_created) if fact.status is S.PAST_DUE else None,
        "last_event_at": None if fact.status_is_inferred else _utc(fact.event_created),
        "updated_at": now,
    }
    await uow.subscriptions.replace(tenant_id, row)
    replaced = _row_summary(current)
    review = current is not None and current["provider"] != "manual" \
        and _status(current["status"]) in _HOLDABLE
    await _audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                 action="subscription_created", actor="stripe",
                 payload={"provider": "stripe", "event_id": fact.event_id,
                          "event_type": fact.event_type, "after": _row_summary(row),
                          "replaced": replaced, "inferred": fact.status_is_inferred,
                          "review": review})
    return tenant_id, "applied"


async def _update_from_fact(uow: SqlUnitOfWork, row: dict[str, Any], fact: SubscriptionFact,
                            now: datetime) -> tuple[str | None, str]:
    tenant_id = row["tenant_id"]
    link: dict[str, Any] = {}
    if fact.customer_ref and row.get("customer_ref") != fact.customer_ref:
        link["customer_ref"] = fact.customer_ref
    authoritative_seen = row.get("last_event_at") is not None
    if fact.status_is_inferred and authoritative_seen:
        if not link:
            return None, "linked"
        await uow.subscriptions.update(row["subscription_id"], updated_at=now, **link)
        await _audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                     action="subscription_linked", actor="stripe",
                     payload={"event_id": fact.event_id, **link})
        return None, "linked"
    if not fact.status_is_inferred and not fact.supersedes(row.get("last_event_at")):
        return None, "stale"

    cur = _status(row["status"])
    target = fact.status
    billing = _billing_doc(row)
    held = bool(billing.get("hold")) and target in _ENTITLED
    if held:
        target = S.UNPAID  # a refund took this period back; only a new payment restores it
    if not reachable(cur, target):
        log.info("Stripe event %s: %s -> %s is not reachable; recorded, not applied",
                 fact.event_id, cur.value, target.value)
        return None, "ignored_invalid_transition"
    plan = fact.plan_id if fact.plan_id in {p.value for p in PLANS} else row["plan_id"]
    values: dict[str, Any] = {
        "status": target.value, "plan_id": plan,
        "entitlements": _entitlements_doc(plan, billing),
        "renewal_at": _utc(fact.current_period_end) if fact.current_period_end
        else row.get("renewal_at"),
        "past_due_since": _past_due_since(cur, target, row.get("past_due_since"),
                                          fact.event_created),
        "updated_at": now, **link,
    }
    if not fact.status_is_inferred:
        values["last_event_at"] = _utc(fact.event_created)
    await uow.subscriptions.update(row["subscription_id"], **values)
    after = {**row, **values}
    material = _row_summary(row) != _row_summary(after) or bool(link)
    if not material:
        return None, "held" if held else "no_change"
    await _audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                 action="subscription_updated", actor="stripe",
                 payload={"provider": "stripe", "event_id": fact.event_id,
                          "event_type": fact.event_type, "before": _row_summary(row),
                          "after": _row_summary(after), "held": held,
                          "unknown_plan": fact.plan_id if plan != fact.plan_id else None})
    return tenant_id, "applied_held" if held else "applied"


async def _apply_payment_fact(uow: SqlUnitOfWork, fact: PaymentFact, now: datetime
                              ) -> tuple[str | None, str]:
    if fact.fee_key is not None:
        return None, await _record_fee_payment(uow, fact)
    row = await _resolve_row(uow, subscription_ref=fact.subscription_ref,
                             customer_ref=fact.customer_ref)
    if row is None or row["provider"] != "stripe":
        return None, "no_subscription"
    tenant_id = row["tenant_id"]
    if fact.tenant_id is not None and fact.tenant_id != tenant_id:
        log.warning("Stripe event %s names tenant %s for another tenant's subscription",
                    fact.event_id, fact.tenant_id)
        return None, "tenant_mismatch"
    cur = _status(row["status"])
    billing = _billing_doc(row)
    at = _utc(fact.event_created)
    target = cur
    lifted = False
    if fact.outcome is PaymentOutcome.PAID:
        last_paid = _parse_iso(billing.get("last_paid_at"))
        if last_paid is None or at >= last_paid:
            billing.update(last_paid_at=iso(at), last_paid_invoice=fact.invoice_ref)
        hold = billing.get("hold")
        hold_since = _parse_iso(hold.get("since")) if isinstance(hold, Mapping) else None
        if hold and (hold_since is None or at >= hold_since):
            billing.pop("hold", None)
            lifted = True
            target = S.ACTIVE
        elif not hold and cur in _RECOVERABLE_BY_PAYMENT and \
                _not_older(at, row.get("last_event_at")):
            target = S.ACTIVE
    elif cur in _ENTITLED and _not_older(at, row.get("last_event_at")):
        target = S.PAST_DUE
    if target is not cur and not reachable(cur, target):
        return None, "ignored_invalid_transition"
    values: dict[str, Any] = {
        "entitlements": _entitlements_doc(row["plan_id"], billing), "updated_at": now,
    }
    if target is not cur:
        values.update(status=target.value,
                      past_due_since=_past_due_since(cur, target, row.get("past_due_since"),
                                                     at),
                      last_event_at=max(at, row["last_event_at"]) if row.get("last_event_at")
                      else at)
    await uow.subscriptions.update(row["subscription_id"], **values)
    if target is cur and not lifted:
        return None, "recorded"
    after = {**row, **values}
    await _audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                 action="subscription_payment_" + fact.outcome.value, actor="stripe",
                 payload={"provider": "stripe", "event_id": fact.event_id,
                          "invoice_ref": fact.invoice_ref, "amount_cents": fact.amount_cents,
                          "currency": fact.currency, "before": _row_summary(row),
                          "after": _row_summary(after), "refund_hold_lifted": lifted})
    return tenant_id, "applied"


async def _record_fee_payment(uow: SqlUnitOfWork, fact: PaymentFact) -> str:
    row = await _resolve_row(uow, subscription_ref=None, customer_ref=fact.customer_ref)
    tenant_id = row["tenant_id"] if row else fact.tenant_id
    ledger = await FeeLedgerRepository(uow_conn(uow)).by_invoice_ref(
        tenant_id, fact.invoice_ref) if tenant_id else None
    await uow.audit.append(
        entity="fee_invoice", entity_id=fact.invoice_ref[:64],
        action=f"fee_invoice_{fact.outcome.value}", actor="stripe", tenant_id=tenant_id,
        payload={"event_id": fact.event_id, "fee_key": fact.fee_key,
                 "amount_cents": fact.amount_cents, "currency": fact.currency,
                 "follower_id": ledger["follower_id"] if ledger else None,
                 "period_label": ledger["period_label"] if ledger else None})
    return f"fee_invoice_{fact.outcome.value}"


async def _apply_refund_fact(uow: SqlUnitOfWork, fact: RefundFact, now: datetime
                             ) -> tuple[str | None, str]:
    row: dict[str, Any] | None = None
    if fact.tenant_id is not None:
        row = await BillingSubscriptionRepository(uow_conn(uow)).current_for_update(
            fact.tenant_id)
    if row is None:
        row = await _resolve_row(uow, subscription_ref=None, customer_ref=fact.customer_ref)
    if row is None or row["provider"] != "stripe":
        return None, "no_subscription"
    tenant_id = row["tenant_id"]
    billing = _billing_doc(row)
    at = _utc(fact.event_created)
    base = {"provider": "stripe", "event_id": fact.event_id, "charge_ref": fact.charge_ref,
            "invoice_ref": fact.invoice_ref, "amount_cents": fact.amount_cents,
            "amount_refunded_cents": fact.amount_refunded_cents, "currency": fact.currency,
            "fully_refunded": fact.fully_refunded}

    async def record(outcome: str, review: bool = False) -> tuple[str | None, str]:
        await _audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                     action="refund_recorded", actor="stripe",
                     payload={**base, "outcome": outcome, "review": review})
        return None, outcome

    if not fact.fully_refunded:
        return await record("refund_recorded_partial")
    ledger = FeeLedgerRepository(uow_conn(uow))
    if fact.invoice_ref and await ledger.by_invoice_ref(tenant_id, fact.invoice_ref):
        return await record("fee_refund_recorded")
    last_paid = _parse_iso(billing.get("last_paid_at"))
    if last_paid is not None and last_paid > at:
        return await record("refund_recorded_superseded")
    if fact.invoice_ref and billing.get("last_paid_invoice") and \
            fact.invoice_ref != billing["last_paid_invoice"]:
        return await record("refund_recorded_older_invoice")
    if fact.invoice_ref is None:
        fees = await ledger.invoiced(tenant_id)
        if any(int(Decimal(r["fee"]) * 100) == fact.amount_cents for r in fees):
            return await record("refund_recorded_review", review=True)
    cur = _status(row["status"])
    if cur not in _HOLDABLE or not reachable(cur, S.UNPAID):
        return await record("refund_recorded")
    billing["hold"] = {"reason": "refunded", "since": iso(at), "charge_ref": fact.charge_ref}
    values = {"status": S.UNPAID.value, "past_due_since": None,
              "entitlements": _entitlements_doc(row["plan_id"], billing), "updated_at": now}
    await uow.subscriptions.update(row["subscription_id"], **values)
    await _audit(uow, tenant_id=tenant_id, entity_id=row["subscription_id"],
                 action="subscription_refund_hold", actor="stripe",
                 payload={**base, "before": _row_summary(row),
                          "after": _row_summary({**row, **values}), "review": True})
    return tenant_id, "refund_hold"


# -- inbound: BTCPay ------------------------------------------------------------------------

async def receive_btcpay(uow_factory: UowFactory, providers: BillingProviders, body: bytes,
                         signature: str | None, *, clock: Clock = utcnow) -> WebhookResult:
    """Verify, de-duplicate and apply one BTCPay delivery. Raises ``BillingEventRejected``."""
    secret = providers.btcpay_webhook_secret
    if not secret:
        raise ProviderNotConfigured("BTCPay webhooks are not configured")
    event = verify_webhook(body, signature, secret)
    fact = btcpay_fact(event)
    inbox_id = f"btcpay:{event.dedupe_key}"
    now = clock()
    async with uow_factory() as uow:
        inbox = InboxRepository(uow_conn(uow))
        fresh = await inbox.add_if_new({"inbox_id": inbox_id[:300], "provider": "btcpay",
                                        "event_type": event.type[:100], "received_at": now,
                                        "payload": _plain_payload(body)})
        if not fresh:
            return WebhookResult(inbox_id, True, "duplicate", event.type)
        tenant, outcome = (None, "not_handled") if fact is None else \
            await _apply_btcpay(uow, providers, event, fact, now)
        await inbox.mark(inbox_id, outcome=outcome, processed_at=now)
        await uow.commit()
    if tenant is not None:
        await _entitlements_changed(tenant)
    return WebhookResult(inbox_id, False, outcome, event.type)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


async def _apply_btcpay(uow: SqlUnitOfWork, providers: BillingProviders, event: BtcpayEvent,
                        fact: BtcpayInvoiceFact, now: datetime) -> tuple[str | None, str]:
    meta = event.payload.get("metadata")
    metadata: Mapping[str, Any] = meta if isinstance(meta, Mapping) else {}
    o = fact.outcome
    if not fact.is_late_payment and o in (BtcpayOutcome.PAYMENT_RECEIVED,
                                          BtcpayOutcome.PAYMENT_SETTLED,
                                          BtcpayOutcome.PROCESSING):
        return None, "recorded_pending"  # InvoiceSettled is what grants
    tenant_id = fact.tenant_id
    if tenant_id is None:
        return None, "unresolved_tenant"
    if await uow.tenants.get(tenant_id) is None:
        return None, "unknown_tenant"
    plan = metadata.get("plan_id")
    if plan not in {p.value for p in PLANS}:
        return None, "unknown_plan"
    current = await BillingSubscriptionRepository(uow_conn(uow)).current_for_update(tenant_id)
    base = {"provider": "btcpay", "invoice_id": fact.invoice_id, "event_type": event.type,
            "delivery_id": event.delivery_id, "plan": plan,
            "manually_marked": fact.manually_marked, "over_paid": fact.over_paid,
            "partially_paid": fact.partially_paid,
            "payment_value": format(fact.payment_value, "f") if fact.payment_value is not None
            else None}
    entity = current["subscription_id"] if current else fact.invoice_id

    async def flag(action: str, outcome: str, review: bool) -> tuple[str | None, str]:
        await _audit(uow, tenant_id=tenant_id, entity_id=entity, action=action,
                     actor="btcpay", payload={**base, "review": review})
        return None, outcome

    if o is BtcpayOutcome.SETTLED:
        return await _activate_btcpay(uow, providers, tenant_id, str(plan), fact, current, base,
                                      now, review=fact.over_paid, reason="settled")
    if fact.is_late_payment:
        if o is not BtcpayOutcome.PAYMENT_SETTLED:
            return await flag("btcpay_late_payment_seen", "late_payment_unconfirmed", True)
        price = _decimal(metadata.get("amount"))
        if price is not None and fact.payment_value is not None and fact.payment_value < price:
            return await flag("btcpay_late_payment_short", "late_payment_short_review", True)
        return await _activate_btcpay(uow, providers, tenant_id, str(plan), fact, current, base,
                                      now, review=True, reason="late_payment")
    if o is BtcpayOutcome.EXPIRED:
        return await flag("btcpay_invoice_expired", "not_activated_expired",
                          fact.partially_paid)
    return await flag("btcpay_invoice_invalid", "not_activated_invalid", fact.needs_review)


async def _activate_btcpay(uow: SqlUnitOfWork, providers: BillingProviders, tenant_id: str,
                           plan: str, fact: BtcpayInvoiceFact,
                           current: dict[str, Any] | None, base: Mapping[str, Any],
                           now: datetime, *, review: bool, reason: str
                           ) -> tuple[str | None, str]:
    inbox = InboxRepository(uow_conn(uow))
    first = await inbox.add_if_new({
        "inbox_id": f"btcpay:activated:{fact.invoice_id}"[:300], "provider": "btcpay",
        "event_type": "vanta.activation", "received_at": now,
        "payload": {"invoice_id": fact.invoice_id, "tenant_id": tenant_id, "reason": reason},
        "processed_at": now, "outcome": "activated"})
    entity = current["subscription_id"] if current else fact.invoice_id
    if not first:
        await _audit(uow, tenant_id=tenant_id, entity_id=entity,
                     action="btcpay_payment_already_applied", actor="btcpay",
                     payload={**base, "reason": reason, "review": review})
        return None, "already_activated"
    if current is not None and current["provider"] == "stripe" and \
            _status(current["status"]) in _HOLDABLE:
        await _audit(uow, tenant_id=tenant_id, entity_id=entity,
                     action="btcpay_paid_while_stripe_active", actor="btcpay",
                     payload={**base, "reason": reason, "review": True})
        return None, "review_conflicting_subscription"
    at = _utc(fact.event_at)
    start = at
    same = current is not None and current["provider"] == "btcpay" and \
        _status(current["status"]) is not S.CANCELED
    if same and current is not None and current.get("renewal_at") and \
            current["renewal_at"] > start:
        start = current["renewal_at"]  # paid ahead: the new period follows the running one
    renewal = start + providers.btcpay_period
    if same and current is not None:
        billing = _billing_doc(current)
        values: dict[str, Any] = {
            "status": S.ACTIVE.value, "plan_id": plan,
            "entitlements": _entitlements_doc(plan, billing), "renewal_at": renewal,
            "provider_ref": fact.invoice_id, "past_due_since": None,
            "last_event_at": max(at, current["last_event_at"]) if current.get("last_event_at")
            else at, "updated_at": now}
        await uow.subscriptions.update(current["subscription_id"], **values)
        sub_id, after = current["subscription_id"], {**current, **values}
    else:
        after = {"subscription_id": new_id(), "tenant_id": tenant_id, "plan_id": plan,
                 "status": S.ACTIVE.value, "entitlements": _entitlements_doc(plan, {}),
                 "renewal_at": renewal, "created_at": now, "provider": "btcpay",
                 "provider_ref": fact.invoice_id, "customer_ref": None,
                 "past_due_since": None, "last_event_at": at, "updated_at": now}
        await uow.subscriptions.replace(tenant_id, after)
        sub_id = after["subscription_id"]
    await _audit(uow, tenant_id=tenant_id, entity_id=sub_id, action="btcpay_period_paid",
                 actor="btcpay",
                 payload={**base, "reason": reason, "review": review,
                          "period_start": iso(start), "before": _row_summary(current),
                          "after": _row_summary(after)})
    return tenant_id, "activated_review" if review else "activated"


async def expire_btcpay_periods(uow_factory: UowFactory, *, grace: timedelta = DEFAULT_GRACE,
                                clock: Clock = utcnow) -> int:
    """Move BTCPay subscriptions whose paid period ended: ``active`` → ``past_due`` (grace
    counted from ``renewal_at``), and ``past_due`` past the grace → ``unpaid``. Returns how
    many rows moved. Meant for the scheduler; idempotent."""
    now = clock()
    moved: list[str] = []
    async with uow_factory() as uow:
        subs = BillingSubscriptionRepository(uow_conn(uow))
        for row in await subs.btcpay_due(now, (S.ACTIVE.value, S.TRIALING.value)):
            values = {"status": S.PAST_DUE.value, "past_due_since": row["renewal_at"],
                      "updated_at": now}
            await uow.subscriptions.update(row["subscription_id"], **values)
            await _audit(uow, tenant_id=row["tenant_id"], entity_id=row["subscription_id"],
                         action="btcpay_period_ended", actor="scheduler",
                         payload={"before": _row_summary(row),
                                  "after": _row_summary({**row, **values})})
            moved.append(row["tenant_id"])
        for row in await subs.past_due_since_before("btcpay", now - grace):
            values = {"status": S.UNPAID.value, "past_due_since": None, "updated_at": now}
            await uow.subscriptions.update(row["subscription_id"], **values)
            await _audit(uow, tenant_id=row["tenant_id"], entity_id=row["subscription_id"],
                         action="btcpay_lapsed", actor="scheduler",
                         payload={"before": _row_summary(row),
                                  "after": _row_summary({**row, **values})})
            moved.append(row["tenant_id"])
        await uow.commit()
    for tenant in set(moved):
        await _entitlements_changed(tenant)
    return len(moved)


async def stripe_customer_of(uow: SqlUnitOfWork, tenant_id: str) -> str | None:
    """The tenant's Stripe customer (from its Stripe subscription), for fee invoices."""
    row = await uow.subscriptions.current(tenant_id)
    if row is None or row["provider"] != "stripe":
        return None
    ref = row.get("customer_ref")
    return str(ref) if ref else None
