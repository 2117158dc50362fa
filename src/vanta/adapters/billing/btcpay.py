"""BTCPay Server (bitcoin payments) through its Greenfield API, with httpx.

Out: ``BtcpayClient.create_invoice`` (``POST /api/v1/stores/{storeId}/invoices``) and
``get_invoice``; every request carries ``Authorization: token <api key>``.
In: ``verify_webhook`` checks ``BTCPay-Sig: sha256=<hex HMAC-SHA256(secret, raw body)>`` in
constant time and returns a ``BtcpayEvent``; ``btcpay_fact`` turns an invoice event into a
``BtcpayInvoiceFact``.

=========================  ==========================================================
webhook type                outcome
=========================  ==========================================================
InvoiceReceivedPayment      PAYMENT_RECEIVED (seen, unconfirmed)
InvoicePaymentSettled       PAYMENT_SETTLED (one payment confirmed)
InvoiceProcessing           PROCESSING (paid in full, waiting for confirmations)
InvoiceSettled              SETTLED (paid and confirmed: the only outcome that grants)
InvoiceExpired              EXPIRED (``partially_paid`` if some money came in)
InvoiceInvalid              INVALID (payments failed to confirm, or marked invalid)
InvoiceCreated, other       ``None``
=========================  ==========================================================

A *late payment* is a payment on an invoice that has already expired: ``InvoiceReceivedPayment``
or ``InvoicePaymentSettled`` with ``afterExpiration: true``. BTCPay leaves such an invoice
expired (additional status ``PaidLate``) and sends no ``InvoiceSettled``, so the fact says
``is_late_payment`` and ``needs_review``: an operator decides (mark the invoice settled, which
then sends ``InvoiceSettled`` with ``manuallyMarked``, or refund).

Replays: BTCPay's signature covers the body only, with no timestamp, so a captured delivery
verifies forever. De-duplicate on ``BtcpayEvent.dedupe_key`` (the original delivery id, shared
by redeliveries) and treat the facts as state (settled stays settled) rather than increments.

Retries: the Greenfield API has no idempotency keys. ``create_invoice`` looks up a live invoice
with the same ``orderId`` first and returns it, so a retried call does not bill twice.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Final

import httpx

from vanta.adapters.billing.errors import (
    BillingAuthFailed,
    BillingEventRejected,
    BillingRejected,
    BillingUnavailable,
)

__all__ = [
    "SIGNATURE_HEADER",
    "BtcpayClient",
    "BtcpayEvent",
    "BtcpayInvoice",
    "BtcpayInvoiceFact",
    "BtcpayOutcome",
    "btcpay_fact",
    "sign_body",
    "verify_webhook",
]

SIGNATURE_HEADER: Final = "BTCPay-Sig"
TENANT_KEY: Final = "tenant_id"
_PREFIX: Final = "sha256="
_LIVE_STATUSES: Final = frozenset({"New", "Processing", "Settled"})
_EXCERPT: Final = 300


class BtcpayOutcome(StrEnum):
    PAYMENT_RECEIVED = "payment_received"
    PAYMENT_SETTLED = "payment_settled"
    PROCESSING = "processing"
    SETTLED = "settled"
    EXPIRED = "expired"
    INVALID = "invalid"


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


@dataclass(frozen=True, slots=True)
class BtcpayInvoiceFact:
    invoice_id: str
    store_id: str | None
    outcome: BtcpayOutcome
    event_at: datetime
    dedupe_key: str
    tenant_id: str | None = None  # from the invoice metadata, when the webhook carries it
    order_id: str | None = None
    after_expiration: bool = False
    manually_marked: bool = False
    over_paid: bool = False
    partially_paid: bool = False
    payment_id: str | None = None
    payment_value: Decimal | None = None
    payment_method: str | None = None

    @property
    def grants_access(self) -> bool:
        return self.outcome is BtcpayOutcome.SETTLED

    @property
    def is_late_payment(self) -> bool:
        return self.after_expiration and self.outcome in (
            BtcpayOutcome.PAYMENT_RECEIVED, BtcpayOutcome.PAYMENT_SETTLED)

    @property
    def needs_review(self) -> bool:
        """Money arrived that the invoice's status does not account for."""
        return self.is_late_payment or self.over_paid or (
            self.outcome is BtcpayOutcome.EXPIRED and self.partially_paid)


@dataclass(frozen=True, slots=True)
class BtcpayInvoice:
    id: str
    store_id: str | None
    amount: Decimal | None
    currency: str | None
    status: str | None  # New, Processing, Expired, Invalid, Settled
    additional_status: str | None  # None, PaidLate, PaidPartial, Marked, Invalid, PaidOver
    checkout_link: str | None
    created_time: datetime | None
    expiration_time: datetime | None
    metadata: dict[str, Any]

    @property
    def order_id(self) -> str | None:
        value = self.metadata.get("orderId")
        return value if isinstance(value, str) else None


# -- inbound --------------------------------------------------------------------------------

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
    delivery, etype, ts = doc.get("deliveryId"), doc.get("type"), doc.get("timestamp")
    if not _s(delivery) or not _s(etype):
        raise BillingEventRejected("malformed", "event needs deliveryId and type")
    if isinstance(ts, bool) or not isinstance(ts, int | Decimal) or ts < 0:
        raise BillingEventRejected("malformed", "event needs a unix timestamp")
    invoice_id = _s(doc.get("invoiceId"))
    if etype.startswith("Invoice") and invoice_id is None:
        raise BillingEventRejected("malformed", "invoice event without invoiceId")
    return BtcpayEvent(
        delivery_id=delivery, type=etype, timestamp=datetime.fromtimestamp(int(ts), UTC),
        store_id=_s(doc.get("storeId")), invoice_id=invoice_id,
        webhook_id=_s(doc.get("webhookId")),
        original_delivery_id=_s(doc.get("originalDeliveryId")),
        is_redelivery=doc.get("isRedelivery") is True, payload=doc,
    )


def btcpay_fact(event: BtcpayEvent) -> BtcpayInvoiceFact | None:
    """The fact an invoice webhook states; ``None`` for types Vanta does not act on."""
    outcome = _OUTCOMES.get(event.type)
    if outcome is None or event.invoice_id is None:
        return None
    p = event.payload
    metadata = p.get("metadata") if isinstance(p.get("metadata"), dict) else {}
    payment = p.get("payment") if isinstance(p.get("payment"), dict) else {}
    return BtcpayInvoiceFact(
        invoice_id=event.invoice_id,
        store_id=event.store_id,
        outcome=outcome,
        event_at=event.timestamp,
        dedupe_key=event.dedupe_key,
        tenant_id=_s(metadata.get(TENANT_KEY)),
        order_id=_s(metadata.get("orderId")),
        after_expiration=p.get("afterExpiration") is True,
        manually_marked=p.get("manuallyMarked") is True,
        over_paid=p.get("overPaid") is True,
        partially_paid=p.get("partiallyPaid") is True,
        payment_id=_s(payment.get("id")),
        payment_value=_dec(payment.get("value")),
        payment_method=_s(p.get("paymentMethod")),
    )


# -- outbound -------------------------------------------------------------------------------

class BtcpayClient:
    """Greenfield API client. The API key lives only in the client's default headers."""

    def __init__(self, base_url: str, api_key: str, *, timeout: float = 15.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        if not api_key:
            raise ValueError("a BTCPay API key is required")
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"), timeout=timeout, transport=transport,
            headers={"Authorization": f"token {api_key}", "Accept": "application/json"},
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"BtcpayClient({str(self._http.base_url)!r})"

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_invoice(
        self,
        store_id: str,
        amount: Decimal | str | int,
        currency: str,
        order_id: str,
        metadata: Mapping[str, Any] | None = None,
        redirect_url: str | None = None,
        *,
        expiration_minutes: int | None = None,
        reuse_existing: bool = True,
    ) -> tuple[str, str]:
        """Create an invoice for ``amount`` ``currency``: ``(invoice_id, checkout_link)``.

        ``order_id`` goes to ``metadata.orderId`` (BTCPay indexes it). With
        ``reuse_existing`` a live invoice (New, Processing or Settled) for the same order is
        returned instead of creating a second one; one for another amount or currency is a
        ``BillingRejected("order_id_conflict")``.
        """
        value = _amount(amount)
        if not currency or not currency.isalnum() or len(currency) > 10:
            raise ValueError("currency must be a short alphanumeric code such as USD or BTC")
        if not order_id:
            raise ValueError("order_id is required")
        if reuse_existing:
            for inv in await self.find_invoices_by_order_id(store_id, order_id):
                if inv.status not in _LIVE_STATUSES:
                    continue
                if inv.amount != value or (inv.currency or "").upper() != currency.upper():
                    raise BillingRejected(
                        f"order {order_id!r} already has invoice {inv.id} for "
                        f"{inv.amount} {inv.currency}", code="order_id_conflict")
                if inv.checkout_link:
                    return inv.id, inv.checkout_link
        body: dict[str, Any] = {
            "amount": format(value, "f"),
            "currency": currency.upper(),
            "metadata": {**(metadata or {}), "orderId": order_id},
        }
        checkout: dict[str, Any] = {}
        if redirect_url:
            checkout["redirectURL"] = redirect_url
        if expiration_minutes is not None:
            checkout["expirationMinutes"] = expiration_minutes
        if checkout:
            body["checkout"] = checkout
        doc = await self._json("POST", f"/api/v1/stores/{_seg(store_id)}/invoices", json=body)
        inv = _invoice(doc)
        if not inv.checkout_link:
            raise BillingRejected("BTCPay returned an invoice without checkoutLink",
                                  code="unexpected_response")
        return inv.id, inv.checkout_link

    async def get_invoice(self, store_id: str, invoice_id: str) -> BtcpayInvoice:
        return _invoice(await self._json(
            "GET", f"/api/v1/stores/{_seg(store_id)}/invoices/{_seg(invoice_id)}"))

    async def find_invoices_by_order_id(self, store_id: str, order_id: str,
                                        ) -> list[BtcpayInvoice]:
        doc = await self._json("GET", f"/api/v1/stores/{_seg(store_id)}/invoices",
                               params={"orderId": order_id})
        if not isinstance(doc, list):
            raise BillingRejected("BTCPay answered a non-list for an invoice search",
                                  code="unexpected_response")
        return [_invoice(d) for d in doc]

    async def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            r = await self._http.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise BillingUnavailable(f"BTCPay: {method} {path} timed out",
                                     code="timeout") from None
        except httpx.RequestError as e:
            raise BillingUnavailable(f"BTCPay: {method} {path} failed: {type(e).__name__}",
                                     code="connection_error") from None
        status = r.status_code
        if status == 429 or status >= 500:
            raise BillingUnavailable(f"BTCPay: {method} {path} answered {status}",
                                     code="rate_limited" if status == 429 else "server_error",
                                     status=status, retry_after=_retry_after(r))
        if status in (401, 403):
            raise BillingAuthFailed(f"BTCPay refused the API key for {method} {path} "
                                    f"({status}): {_problem(r)}",
                                    code="unauthorized" if status == 401 else "forbidden",
                                    status=status)
        if status == 404:
            raise BillingRejected(f"BTCPay: {path} not found: {_problem(r)}",
                                  code="not_found", status=status)
        if status >= 400:
            raise BillingRejected(f"BTCPay refused {method} {path} ({status}): {_problem(r)}",
                                  code="validation" if status in (400, 422) else "rejected",
                                  status=status, param=_problem_path(r))
        try:
            return json.loads(r.content, parse_float=Decimal)
        except ValueError:
            raise BillingRejected(f"BTCPay: {method} {path} answered non-JSON",
                                  code="unexpected_response", status=status) from None


# -- helpers --------------------------------------------------------------------------------

def _invoice(doc: Any) -> BtcpayInvoice:
    if not isinstance(doc, dict) or not _s(doc.get("id")):
        raise BillingRejected("BTCPay answered an invoice without id",
                              code="unexpected_response")
    metadata = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    return BtcpayInvoice(
        id=doc["id"], store_id=_s(doc.get("storeId")), amount=_dec(doc.get("amount")),
        currency=_s(doc.get("currency")), status=_s(doc.get("status")),
        additional_status=_s(doc.get("additionalStatus")),
        checkout_link=_s(doc.get("checkoutLink")),
        created_time=_time(doc.get("createdTime")),
        expiration_time=_time(doc.get("expirationTime")), metadata=metadata,
    )


def _amount(value: Decimal | str | int) -> Decimal:
    if isinstance(value, bool | float):
        raise TypeError("amount must be a Decimal, str or int, never a float")
    try:
        d = Decimal(value)
    except (InvalidOperation, ValueError, TypeError):
        raise ValueError(f"amount {value!r} is not a number") from None
    if not d.is_finite() or d <= 0:
        raise ValueError("amount must be a positive number")
    return d


def _dec(value: object) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        d = Decimal(str(value)) if not isinstance(value, Decimal) else value
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return datetime.fromtimestamp(int(value), UTC)


def _s(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _seg(value: str) -> str:
    """A path segment; refuses anything that could change the path."""
    if not value or any(c in value for c in "/?#%\\") or value in (".", ".."):
        raise ValueError(f"invalid id {value!r}")
    return value


def _problem(r: httpx.Response) -> str:
    try:
        doc = r.json()
    except ValueError:
        return r.text[:_EXCERPT].strip()
    if isinstance(doc, list):  # ValidationProblemDetails: [{"path": ..., "message": ...}]
        return "; ".join(f"{d.get('path')}: {d.get('message')}" for d in doc
                         if isinstance(d, dict))[:_EXCERPT]
    if isinstance(doc, dict):  # ProblemDetails: {"code": ..., "message": ...}
        return str(doc.get("message") or doc.get("code") or "")[:_EXCERPT]
    return ""


def _problem_path(r: httpx.Response) -> str | None:
    try:
        doc = r.json()
    except ValueError:
        return None
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        return _s(doc[0].get("path"))
    return None


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
