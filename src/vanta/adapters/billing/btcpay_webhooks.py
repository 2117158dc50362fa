"""BTCPay webhooks in: ``BTCPay-Sig`` verification, then invoice facts.

``verify_webhook`` checks ``BTCPay-Sig: sha256=<hex HMAC-SHA256(secret, raw body)>`` in
constant time and returns a ``BtcpayEvent``; ``btcpay_fact`` turns an invoice event into a
``BtcpayInvoiceFact`` (see ``btcpay`` for the table of types and outcomes, late payments and
replays). ``BtcpayWebhooks`` is the application's ``WebhookVerifier`` for BTCPay.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from vanta.application.ports.billing import BTCPAY_SIGNATURE_HEADER, BillingEventRejected
from vanta.application.ports.billing_facts import BtcpayInvoiceFact, BtcpayOutcome, InboundEvent

__all__ = [
    "SIGNATURE_HEADER",
    "BtcpayEvent",
    "BtcpayWebhooks",
    "btcpay_fact",
    "sign_body",
    "verify_webhook",
]

SIGNATURE_HEADER: Final = BTCPAY_SIGNATURE_HEADER
TENANT_KEY: Final = "tenant_id"
_PREFIX: Final = "sha256="

_OUTCOMES: Mapping[str, BtcpayOutcome] = {
    "InvoiceReceivedPayment": BtcpayOutcome.PAYMENT_RECEIVED,
    "InvoicePaymentSettled": BtcpayOutcome.PAYMENT_SETTLED,
    "InvoiceProcessing": BtcpayOutcome.PROCESSING,
    "InvoiceSettled": BtcpayOutcome.SETTLED,
    "InvoiceExpired": BtcpayOutcome.EXPIRED,
    "InvoiceInvalid": BtcpayOutcome.INVALID,
}


@dataclass(frozen=True, slots=True)
class BtcpayEvent:
    """A verified BTCPay webhook delivery as plain data."""

    delivery_id: str
    type: str
    timestamp: datetime
    store_id: str | None
    invoice_id: str | None
    webhook_id: str | None
    original_delivery_id: str | None
    is_redelivery: bool
    payload: dict[str, Any]

    @property
    def dedupe_key(self) -> str:
        """The same for a delivery and all its redeliveries."""
        return self.original_delivery_id or self.delivery_id



def sign_body(body: bytes, secret: str) -> str:
    """The ``BTCPay-Sig`` value BTCPay sends for ``body``."""
    return _PREFIX + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_webhook(body: bytes, sig_header: str | None, secret: str) -> BtcpayEvent:
    """Verify a BTCPay webhook delivery and return it as a ``BtcpayEvent``.

    Refuses with ``BillingEventRejected``: ``missing_signature``, ``bad_signature`` (wrong
    secret, tampered body, not ``sha256=<hex>``) or ``malformed`` (signed, but not a webhook
    event). The signature is checked before the body is parsed.
    """
    if not secret:
        raise ValueError("a webhook secret is required")
    if not sig_header or not sig_header.strip():
        raise BillingEventRejected("missing_signature")
    given = sig_header.strip()
    if given[: len(_PREFIX)].lower() != _PREFIX:
        raise BillingEventRejected("bad_signature", "signature must be sha256=<hex>")
    expected = sign_body(bytes(body), secret)[len(_PREFIX):].encode("ascii")
    candidate = given[len(_PREFIX):].strip().lower().encode("utf-8", "replace")
    if not hmac.compare_digest(expected, candidate):
        raise BillingEventRejected("bad_signature")
    return _parse_event(body)


def _parse_event(body: bytes) -> BtcpayEvent:
    try:
        doc = json.loads(body, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise BillingEventRejected("malformed", "body is not JSON") from None
    if not isinstance(doc, dict):
        raise BillingEventRejected("malformed", "event must be a JSON object")
    delivery, etype = opt_str(doc.get("deliveryId")), opt_str(doc.get("type"))
    ts = doc.get("timestamp")
    if delivery is None or etype is None:
        raise BillingEventRejected("malformed", "event needs deliveryId and type")
    if isinstance(ts, bool) or not isinstance(ts, int | Decimal) or ts < 0:
        raise BillingEventRejected("malformed", "event needs a unix timestamp")
    invoice_id = opt_str(doc.get("invoiceId"))
    if etype.startswith("Invoice") and invoice_id is None:
        raise BillingEventRejected("malformed", "invoice event without invoiceId")
    return BtcpayEvent(
        delivery_id=delivery, type=etype, timestamp=datetime.fromtimestamp(int(ts), UTC),
        store_id=opt_str(doc.get("storeId")), invoice_id=invoice_id,
        webhook_id=opt_str(doc.get("webhookId")),
        original_delivery_id=opt_str(doc.get("originalDeliveryId")),
        is_redelivery=doc.get("isRedelivery") is True, payload=doc,
    )


def btcpay_fact(event: BtcpayEvent) -> BtcpayInvoiceFact | None:
    """The fact an invoice webhook states; ``None`` for types Vanta does not act on."""
    outcome = _OUTCOMES.get(event.type)
    if outcome is None or event.invoice_id is None:
        return None
    p = event.payload
    metadata, payment = opt_dict(p.get("metadata")), opt_dict(p.get("payment"))
    return BtcpayInvoiceFact(
        invoice_id=event.invoice_id,
        store_id=event.store_id,
        outcome=outcome,
        event_at=event.timestamp,
        dedupe_key=event.dedupe_key,
        tenant_id=opt_str(metadata.get(TENANT_KEY)),
        order_id=opt_str(metadata.get("orderId")),
        after_expiration=p.get("afterExpiration") is True,
        manually_marked=p.get("manuallyMarked") is True,
        over_paid=p.get("overPaid") is True,
        partially_paid=p.get("partiallyPaid") is True,
        payment_id=opt_str(payment.get("id")),
        payment_value=opt_decimal(payment.get("value")),
        payment_method=opt_str(p.get("paymentMethod")),
        event_type=event.type,
        delivery_id=event.delivery_id,
        plan_id=opt_str(metadata.get("plan_id")),
        price=opt_decimal(metadata.get("amount")),
        fee_key=opt_str(metadata.get("fee_key")),
    )


class BtcpayWebhooks:
    """``WebhookVerifier`` for BTCPay: a delivery becomes an ``InboundEvent`` keyed by its
    original delivery id (shared by redeliveries)."""

    provider = "btcpay"

    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        self._secret = secret

    def __repr__(self) -> str:  # never show the secret
        return "BtcpayWebhooks()"

    def verify(self, body: bytes, signature: str | None) -> InboundEvent:
        event = verify_webhook(body, signature, self._secret)
        return InboundEvent(self.provider, event.dedupe_key, event.type, btcpay_fact(event))


def opt_decimal(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def opt_dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
