"""BTCPay Server (bitcoin payments) through its Greenfield API, with httpx.

Out: ``BtcpayClient.create_invoice`` (``POST /api/v1/stores/{storeId}/invoices``),
``get_invoice``, ``paid_invoice`` and ``refund`` (``POST .../invoices/{id}/refund``); every
request carries ``Authorization: token <api key>``.
In (``btcpay_webhooks``, re-exported here): ``verify_webhook`` checks ``BTCPay-Sig:
sha256=<hex HMAC-SHA256(secret, raw body)>`` in constant time and returns a ``BtcpayEvent``;
``btcpay_fact`` turns an invoice event into a ``BtcpayInvoiceFact``. ``BtcpayClient``
implements the application's ``BtcpayInvoicing`` port.

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

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import httpx

from vanta.adapters.billing.btcpay_webhooks import (
    SIGNATURE_HEADER,
    BtcpayEvent,
    BtcpayWebhooks,
    btcpay_fact,
    opt_decimal,
    opt_dict,
    opt_str,
    sign_body,
    verify_webhook,
)
from vanta.application.ports.billing import (
    BillingAuthFailed,
    BillingError,
    BillingRejected,
    BillingUnavailable,
)
from vanta.application.ports.billing_facts import (
    BtcpayInvoiceFact,
    BtcpayOutcome,
    PaidInvoice,
    RefundReceipt,
)

__all__ = [
    "SIGNATURE_HEADER",
    "BtcpayClient",
    "BtcpayEvent",
    "BtcpayInvoice",
    "BtcpayInvoiceFact",
    "BtcpayOutcome",
    "BtcpayWebhooks",
    "btcpay_fact",
    "sign_body",
    "verify_webhook",
]

_LIVE_STATUSES: Final = frozenset({"New", "Processing", "Settled"})
# the invoice metadata key holding what Vanta refunded of it so far (a decimal string)
REFUNDED_KEY: Final = "vantaRefunded"
_EXCERPT: Final = 300


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

    async def paid_invoice(self, store_id: str, invoice_id: str) -> PaidInvoice:
        """What a Settled invoice took in, less what Vanta refunded of it (kept in the
        invoice's metadata under ``REFUNDED_KEY``: BTCPay does not total refunds)."""
        try:
            path = f"/api/v1/stores/{_seg(store_id)}/invoices/{_seg(invoice_id)}"
        except ValueError:
            raise BillingRejected(f"BTCPay: no invoice {invoice_id!r}", code="not_found",
                                  status=404) from None
        inv = _invoice(await self._json("GET", path))
        paid = (inv.amount or Decimal(0)) if inv.status == "Settled" else Decimal(0)
        owner = inv.metadata.get("tenant_id")
        refunded = opt_decimal(inv.metadata.get(REFUNDED_KEY)) or Decimal(0)
        return PaidInvoice(inv.id, owner if isinstance(owner, str) else None, paid, refunded,
                           (inv.currency or "").upper())

    async def refund(self, store_id: str, invoice_id: str, amount: Decimal, currency: str, *,
                     reason: str | None = None) -> RefundReceipt:
        """A refund pull payment for ``amount`` ``currency`` (the customer claims it to an
        address of theirs). The refunded total is recorded in the metadata first and put
        back if BTCPay refuses the refund, so a failure never lets more out than was paid."""
        value = _amount(amount)
        path = f"/api/v1/stores/{_seg(store_id)}/invoices/{_seg(invoice_id)}"
        inv = _invoice(await self._json("GET", path))
        before = dict(inv.metadata)
        total = (opt_decimal(before.get(REFUNDED_KEY)) or Decimal(0)) + value
        await self._json("PUT", path, json={
            "metadata": {**before, REFUNDED_KEY: format(total, "f")}})
        try:
            doc = await self._json("POST", f"{path}/refund", json={
                "name": f"Refund of invoice {invoice_id}", "description": reason or "",
                "paymentMethod": "BTC-CHAIN", "refundVariant": "Custom",
                "customAmount": format(value, "f"), "customCurrency": currency.upper()})
        except BillingError:
            await self._json("PUT", path, json={"metadata": before})
            raise
        ref = opt_str(doc.get("id")) if isinstance(doc, dict) else None
        if not ref:
            raise BillingRejected("BTCPay answered a refund without id",
                                  code="unexpected_response")
        return RefundReceipt(ref, value, "pending")

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
    if not isinstance(doc, dict) or not opt_str(doc.get("id")):
        raise BillingRejected("BTCPay answered an invoice without id",
                              code="unexpected_response")
    metadata = opt_dict(doc.get("metadata"))
    return BtcpayInvoice(
        id=doc["id"], store_id=opt_str(doc.get("storeId")), amount=opt_decimal(doc.get("amount")),
        currency=opt_str(doc.get("currency")), status=opt_str(doc.get("status")),
        additional_status=opt_str(doc.get("additionalStatus")),
        checkout_link=opt_str(doc.get("checkoutLink")),
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


def _time(value: object) -> datetime | None:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return None
    return datetime.fromtimestamp(int(value), UTC)


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
        return opt_str(doc[0].get("path"))
    return None


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("Retry-After")
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
