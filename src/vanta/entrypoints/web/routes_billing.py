"""Subscription and billing: plan and entitlements, provider events (invoices, payments),
change plan (Stripe Checkout redirect or a BTCPay invoice with a QR code), cancel; the
performance fees of each follower per period, P&L and fees side by side, with a chart."""

from __future__ import annotations

import io
from datetime import datetime
from decimal import Decimal
from typing import Any

import segno
from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup

from vanta.application.billing.cancel import cancel_subscription
from vanta.application.billing.inbox_review import inbox_page
from vanta.application.billing.plan_change import change_plan
from vanta.application.fees_service import fee_ledger
from vanta.application.ports.billing import BillingError
from vanta.application.tenancy import tenant_entitlements
from vanta.domain.entitlements import PLANS
from vanta.domain.errors import DomainError
from vanta.entrypoints.api.access import load_follower, visible_vaults
from vanta.entrypoints.web.charts import line_chart
from vanta.entrypoints.web.pages import (
    NAV,
    NavItem,
    container_of,
    flash,
    form_of,
    page_router,
    plain_words,
    render,
    require_page_principal,
)

router = page_router()
NAV.append(NavItem("Billing", "/app/billing", lambda p: p.has_scope("billing:read")
                   and p.follower_id is None))


def qr_svg(data: str) -> Markup:
    """A QR code as inline SVG, drawn here (nothing fetched)."""
    buf = io.BytesIO()
    segno.make(data, error="m").save(buf, kind="svg", xmldecl=False, svgns=True, omitsize=True,
                                     title="QR code of the invoice's payment link")
    return Markup(buf.getvalue().decode())


async def _followers(request: Request, p: Any) -> list[Any]:
    c = container_of(request)
    vaults = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        rows = [f for v in await uow.vaults.list(p.tenant_id)
                if vaults is None or v.vault_id in vaults
                for f in await uow.followers.list_for_vault(p.tenant_id, v.vault_id)]
    return [f for f in rows if p.may_see_follower(f.follower_id)]


def _fee_chart(rows: list[dict[str, Any]]) -> Markup:
    def series(key: str) -> list[tuple[datetime, Decimal]]:
        return [(datetime.fromisoformat(r["period_end"]), Decimal(r[key])) for r in rows
                if r.get(key) is not None]
    return line_chart([("P&L", series("pnl")), ("fee", series("fee")),
                       ("high-water mark", series("hwm_after"))],
                      title="P&L, fees and high-water mark per period")


@router.get("/billing")
async def billing(request: Request, follower: str | None = None,
                  plan: str | None = None) -> Response:
    p = require_page_principal(request, "billing:read", allow=lambda q: q.follower_id is None)
    c = container_of(request)
    async with c.uow(readonly=True) as uow:
        sub = await uow.subscriptions.current(p.tenant_id)
        ent = await tenant_entitlements(uow, p.tenant_id)
    events = (await inbox_page(c.uow(readonly=True), tenant_id=p.tenant_id, limit=20)).items
    followers = await _followers(request, p)
    ledger, chart = None, None
    if follower:
        await load_follower(c, p, follower)  # 404 for one the user may not see
        ledger = await fee_ledger(c.uow(readonly=True), tenant_id=p.tenant_id,
                                  follower_id=follower)
        chart = _fee_chart(ledger["data"])
    providers = [name for name, gw in (("stripe", c.billing.stripe),
                                       ("btcpay", c.billing.btcpay)) if gw is not None]
    return render(request, "billing.html", title="Subscription and billing", sub=sub,
                  ent=ent.to_json(), plans=list(PLANS.values()), events=events,
                  followers=followers, follower=follower, ledger=ledger, chart=chart,
                  providers=providers, chosen=plan or (sub.plan_id if sub else "core"),
                  manage=p.has_scope("users:manage"))


@router.post("/billing/change-plan")
async def change(request: Request) -> Response:
    p = require_page_principal(request, "users:manage")
    c = container_of(request)
    form = await form_of(request)
    raw = {"plan": form.get("plan", ""), "provider": form.get("provider", "stripe")}
    try:
        _, answer = await change_plan(c.uow, c.billing, tenant_id=p.tenant_id,
                                      raw=raw, actor=p.subject)
    except (DomainError, BillingError) as e:
        flash(request, plain_words(e), "error")
        return RedirectResponse("/app/billing", status_code=303)
    if answer.get("action") == "checkout":
        # Stripe Checkout takes the payment on its own page, then returns here. A link, not
        # a redirect of this POST: the CSP's form-action 'self' refuses a form redirected
        # to another site.
        return render(request, "stripe_checkout.html", title="Pay by card", checkout=answer)
    if answer.get("action") == "invoice":
        return render(request, "btcpay_invoice.html", title="Pay with bitcoin",
                      invoice=answer, qr=qr_svg(str(answer["checkout_url"])))
    flash(request, f"Plan change to {answer.get('plan')} sent to the provider; it applies "
                   "when the provider confirms it.")
    return RedirectResponse("/app/billing", status_code=303)


@router.post("/billing/cancel")
async def cancel(request: Request) -> Response:
    p = require_page_principal(request, "users:manage")
    c = container_of(request)
    form = await form_of(request)
    try:
        out = await cancel_subscription(c.uow, c.billing, tenant_id=p.tenant_id,
                                        at=form.get("at", "period_end"), actor=p.subject)
    except (DomainError, BillingError) as e:
        flash(request, plain_words(e), "error")
    else:
        flash(request, f"Subscription: {str(out.get('action', 'canceled')).replace('_', ' ')}.")
    return RedirectResponse("/app/billing", status_code=303)
