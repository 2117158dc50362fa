"""Routes for billing: plan changes, the providers' webhooks, follower flows and fees.

==========================================================  =================  ============
route                                                        scope              answers
==========================================================  =================  ============
``POST /v1/subscriptions/change-plan``                       ``users:manage``   201 / 200
``POST /v1/subscriptions/cancel`` ``{"at": ...}``             ``users:manage``   200
``POST /v1/subscriptions/resume``                            ``users:manage``   200
``POST /v1/billing/webhooks/stripe`` (``Stripe-Signature``)  none (signed)      200 / 400
``POST /v1/billing/webhooks/btcpay`` (``BTCPay-Sig``)        none (signed)      200 / 400
``POST /v1/followers/{id}/flows``                            ``follower:manage`` 201
``POST /v1/followers/{id}/fees/close-period``                ``mirror:manage``  201 / 200
``GET /v1/followers/{id}/fees``                              ``billing:read``   200
``GET /v1/billing/inbox`` (``limit``, ``cursor``)             ``billing:read``   200
``POST /v1/billing/invoices/{id}/refunds``                   ``users:manage``   201
==========================================================  =================  ============

Webhooks: a refused signature is ``400`` with ``code`` = the rejection reason
(``missing_signature``, ``bad_signature``, ``stale``, ``malformed``) and nothing is written; a
redelivery answers ``200 {"duplicate": true}``. Provider failures on outbound calls answer
``503 billing_unavailable`` (with ``Retry-After`` when the provider gave one) or
``502 billing_rejected`` / ``502 billing_misconfigured``.
"""

from __future__ import annotations

import logging
from collections.abc import Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse

from vanta.application.billing import (
    BillingProviders,
    ProviderNotConfigured,
    cancel_subscription,
    change_plan,
    inbox_page,
    receive_btcpay,
    receive_stripe,
    refund_invoice,
    resume_subscription,
)
from vanta.application.clock import Clock
from vanta.application.fee_invoicing import FeeInvoicers
from vanta.application.fees_service import close_fee_period, fee_ledger, record_flow
from vanta.application.ports.billing import (
    BTCPAY_SIGNATURE_HEADER,
    STRIPE_SIGNATURE_HEADER,
    BillingAuthFailed,
    BillingError,
    BillingEventRejected,
    BillingRejected,
    BillingUnavailable,
)
from vanta.application.principal import Principal
from vanta.entrypoints.api.access import load_follower
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.billing import (
    CancelIn,
    ChangePlanIn,
    ClosePeriodIn,
    FlowIn,
    RefundIn,
)
from vanta.entrypoints.api.pagination import decode, encode
from vanta.entrypoints.api.problems import ApiProblem

log = logging.getLogger("vanta.billing")

MAX_WEBHOOK_BYTES = 512 * 1024
T = TypeVar("T")

router = APIRouter()


def get_providers(request: Request) -> BillingProviders:
    """The payment providers ``create_app`` set up (closed when the application stops)."""
    providers: BillingProviders = request.app.state.billing_providers
    return providers


def get_clock(request: Request) -> Clock:
    clock: Clock = request.app.state.billing_clock
    return clock


Providers = Annotated[BillingProviders, Depends(get_providers)]
ClockDep = Annotated[Clock, Depends(get_clock)]


async def _provider_call(call: Coroutine[Any, Any, T]) -> T:
    """Await an application call that talks to a provider; billing errors as problems."""
    try:
        return await call
    except ProviderNotConfigured as e:
        raise ApiProblem(409, e.code, e.message) from None
    except BillingUnavailable as e:
        headers = {"Retry-After": str(int(e.retry_after))} if e.retry_after else None
        raise ApiProblem(503, "billing_unavailable", e.message, headers=headers,
                         provider_code=e.code) from None
    except BillingAuthFailed as e:
        log.error("billing provider refused our credentials: %s", e.code)
        raise ApiProblem(502, "billing_misconfigured", "the payment provider refused the "
                         "platform's credentials", provider_code=e.code) from None
    except BillingRejected as e:
        raise ApiProblem(502, "billing_rejected", e.message, provider_code=e.code) from None
    except BillingEventRejected:
        raise
    except BillingError as e:  # pragma: no cover - every subclass is handled above
        raise ApiProblem(502, "billing_error", e.message) from None


@router.post("/v1/subscriptions/change-plan", tags=["billing"],
             responses={201: {"description": "a checkout session or invoice to pay"},
                        200: {"description": "the existing subscription's price was changed"}},
             openapi_extra=openapi_body(ChangePlanIn))
async def change(request: Request, container: ContainerDep, prov: Providers, clock: ClockDep,
                 p: Annotated[Principal, Depends(require("users:manage"))],
                 req: Annotated[ChangePlanIn, body(ChangePlanIn)]) -> JSONResponse:
    created, answer = await _provider_call(change_plan(
        container.uow, prov, tenant_id=p.tenant_id, raw=req.to_raw(), actor=p.subject,
        idempotency_key=request.headers.get("Idempotency-Key"), clock=clock))
    return JSONResponse(answer, status_code=201 if created else 200)


@router.post("/v1/subscriptions/cancel", tags=["billing"], openapi_extra=openapi_body(CancelIn))
async def cancel(container: ContainerDep, prov: Providers, clock: ClockDep,
                 p: Annotated[Principal, Depends(require("users:manage"))],
                 req: Annotated[CancelIn, body(CancelIn)]) -> dict[str, Any]:
    return await _provider_call(cancel_subscription(
        container.uow, prov, tenant_id=p.tenant_id, at=req.at, actor=p.subject, clock=clock))


@router.post("/v1/subscriptions/resume", tags=["billing"])
async def resume(container: ContainerDep, prov: Providers, clock: ClockDep,
                 p: Annotated[Principal, Depends(require("users:manage"))]) -> dict[str, Any]:
    return await _provider_call(resume_subscription(
        container.uow, prov, tenant_id=p.tenant_id, actor=p.subject, clock=clock))


@router.post("/v1/billing/invoices/{invoice_id}/refunds", status_code=201, tags=["billing"],
             openapi_extra=openapi_body(RefundIn))
async def refund(invoice_id: Annotated[str, Path(min_length=1, max_length=255)],
                 request: Request, container: ContainerDep, prov: Providers,
                 p: Annotated[Principal, Depends(require("users:manage"))],
                 req: Annotated[RefundIn, body(RefundIn)]) -> dict[str, Any]:
    """Refund a paid invoice of the tenant, in full (no ``amount``) or in part."""
    return await _provider_call(refund_invoice(
        container.uow, prov, tenant_id=p.tenant_id, invoice_id=invoice_id,
        amount=req.amount, reason=req.reason, actor=p.subject,
        idempotency_key=request.headers.get("Idempotency-Key")))


async def _webhook(request: Request, provider: str, header: str) -> JSONResponse:
    container, prov = request.app.state.container, get_providers(request)
    raw = await request.body()
    if len(raw) > MAX_WEBHOOK_BYTES:
        raise ApiProblem(413, "body_too_large",
                         f"the body exceeds {MAX_WEBHOOK_BYTES} bytes")
    receive = receive_stripe if provider == "stripe" else receive_btcpay
    try:
        result = await _provider_call(receive(container.uow, prov, raw,
                                              request.headers.get(header),
                                              clock=get_clock(request)))
    except BillingEventRejected as e:
        client = request.client.host if request.client else "?"
        log.warning("%s webhook refused: %s (from %s)", provider, e.reason, client)
        raise ApiProblem(400, e.reason, f"the {provider} event was refused: {e.reason}",
                         title="billing event rejected") from None
    except ApiProblem as e:
        if e.code == "billing_provider_not_configured":
            raise ApiProblem(404, e.code, e.detail) from None
        raise
    if not result.duplicate:
        log.info("%s webhook %s applied: %s", provider, result.inbox_id, result.outcome)
    return JSONResponse(result.as_json(), status_code=200)


@router.post("/v1/billing/webhooks/stripe", tags=["billing"])
async def stripe_webhook(request: Request) -> JSONResponse:
    return await _webhook(request, "stripe", STRIPE_SIGNATURE_HEADER)


@router.post("/v1/billing/webhooks/btcpay", tags=["billing"])
async def btcpay_webhook(request: Request) -> JSONResponse:
    return await _webhook(request, "btcpay", BTCPAY_SIGNATURE_HEADER)


@router.post("/v1/followers/{follower_id}/flows", status_code=201, tags=["fees"],
             openapi_extra=openapi_body(FlowIn))
async def add_flow(follower_id: str, container: ContainerDep, clock: ClockDep,
                   p: Annotated[Principal, Depends(require("follower:manage"))],
                   flow: Annotated[FlowIn, body(FlowIn)]) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await record_flow(container.uow(), tenant_id=p.tenant_id,
                             follower_id=follower_id, raw=flow.to_raw(),
                             actor=p.subject, clock=clock)


@router.post("/v1/followers/{follower_id}/fees/close-period", tags=["fees"],
             responses={201: {"description": "the period was closed now"},
                        200: {"description": "the period was already closed"}},
             openapi_extra=openapi_body(ClosePeriodIn))
async def close(follower_id: str, container: ContainerDep, prov: Providers, clock: ClockDep,
                p: Annotated[Principal, Depends(require("mirror:manage"))],
                req: Annotated[ClosePeriodIn, body(ClosePeriodIn)]) -> JSONResponse:
    await load_follower(container, p, follower_id)
    created, answer = await _provider_call(close_fee_period(
        container.uow, tenant_id=p.tenant_id, follower_id=follower_id,
        raw=req.to_raw(), actor=p.subject, clock=clock,
        invoicers=FeeInvoicers(stripe=prov.stripe, btcpay=prov.btcpay,
                               btcpay_store_id=prov.btcpay_store_id,
                               currency=prov.fee_currency)))
    return JSONResponse(answer, status_code=201 if created else 200)


@router.get("/v1/followers/{follower_id}/fees", tags=["fees"])
async def fees(follower_id: str, container: ContainerDep,
               p: Principal = Depends(require("billing:read"))) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await fee_ledger(container.uow(readonly=True), tenant_id=p.tenant_id,
                            follower_id=follower_id)


@router.get("/v1/billing/inbox", tags=["billing"])
async def inbox(container: ContainerDep,
                p: Annotated[Principal, Depends(require("billing:read"))],
                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                cursor: Annotated[str | None, Query(max_length=600)] = None) -> dict[str, Any]:
    """The tenant's provider events (Stripe, BTCPay), newest first: what each did."""
    page = await inbox_page(container.uow(readonly=True), tenant_id=p.tenant_id, limit=limit,
                            before=decode(cursor))
    nxt = page.next_before
    return {"data": page.items, "next_cursor": encode(*nxt) if nxt is not None else None}
