"""Onboarding, billing, branding and the follower portal pages over HTTP (no browser):
what each shows, what each refuses (roles, other tenants, missing CSRF), and that a change
made on a page is the same audited change as through the API."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import httpx

from tests.api.conftest import Api
from tests.api.web_helpers import CSRF, follower_ids, sign_in
from tests.fakes.billing import FakeBtcpay, FakeStripe
from tests.images import data_url, png
from vanta.application.billing import BillingProviders

FORM = re.compile(r'name="form_token" value="([^"]+)"')
LINK = re.compile(r"https?://\S+?(/app/invitations/[A-Za-z0-9_-]+)")


async def _audit(api: Api, action: str) -> list[tuple[str, dict[str, object]]]:
    async with api.container.uow() as uow:
        return [(e.actor, dict(e.payload)) for e in await uow.audit.all() if e.action == action]


async def test_a_visitor_signs_up_a_tenant_and_lands_on_choosing_a_plan(api: Api) -> None:
    c = api.client
    c.cookies.clear()
    page = await c.get("/app/signup")
    assert page.status_code == 200 and "Create organisation" in page.text
    token = FORM.search(page.text)
    assert token is not None
    forged = await c.post("/app/signup", data={"name": "Nova", "email": "eve@nova.example",
                                               "plan": "pro", "form_token": "forged"})
    assert forged.status_code == 403  # the double-submit value must match the cookie
    bad = await c.post("/app/signup", data={"name": "Nova", "email": "nope", "plan": "pro",
                                            "form_token": token.group(1)})
    assert bad.status_code == 422 and "email is not a valid address" in bad.text
    token = FORM.search(bad.text)
    assert token is not None
    r = await c.post("/app/signup", data={"name": "Nova", "email": "eve@nova.example",
                                          "plan": "pro", "form_token": token.group(1)})
    assert r.status_code == 303 and r.headers["location"] == "/app/billing?plan=pro"
    twice = await c.post("/app/signup", data={"name": "Nova", "email": "eve@nova.example",
                                              "plan": "pro", "form_token": token.group(1)})
    assert twice.status_code == 403  # the form's value is spent: no second tenant
    billing = await c.get(r.headers["location"])
    assert billing.status_code == 200
    assert "Choose a plan and pay" in billing.text and "owner · tnt_" in billing.text
    assert "No payment provider is configured" in billing.text
    [(actor, payload)] = await _audit(api, "signed_up")
    assert payload["plan_chosen"] == "pro" and actor.startswith("dev-owner@tnt_")


async def test_an_invitation_from_the_team_page_is_mailed_listed_and_accepted(api: Api
                                                                             ) -> None:
    c = api.client
    csrf = await sign_in(c, "owner")
    no_token = await c.post("/app/team/invite", data={"email": "x@corp.example"})
    assert no_token.status_code == 403
    r = await c.post("/app/team/invite", data={"email": "ada@corp.example", "role": "auditor",
                                               "csrf_token": csrf}, follow_redirects=True)
    assert r.status_code == 200 and "Invitation sent to ada@corp.example" in r.text
    outbox = await c.get("/app/outbox")
    assert "Join tnt_a as auditor" in outbox.text
    mail_id = re.search(r'/app/outbox\?mail=([^"]+)"', outbox.text)
    assert mail_id is not None
    mail = await c.get(f"/app/outbox?mail={mail_id.group(1)}")
    link = LINK.search(mail.text)
    assert link is not None
    await sign_in(c, "owner", "tnt_b")  # another tenant's owner sees none of it
    other = await c.get(f"/app/outbox?mail={mail_id.group(1)}")
    assert "ada@corp.example" not in other.text and "No mail yet" in other.text
    c.cookies.clear()  # the invitee, in their own browser
    page = await c.get(link.group(1))
    form = FORM.search(page.text)
    assert page.status_code == 200 and form is not None
    accepted = await c.post(link.group(1), data={"form_token": form.group(1)})
    assert accepted.status_code == 303
    home = await c.get("/app/vaults")
    assert home.status_code == 200 and "auditor · tnt_a" in home.text
    again_page = await c.get(link.group(1))
    again_form = FORM.search(again_page.text)
    assert again_form is not None
    again = await c.post(link.group(1), data={"form_token": again_form.group(1)})
    assert again.status_code == 404 and "no open invitation" in again.text


async def test_the_team_page_refuses_a_seat_the_plan_lacks_and_non_owners(api: Api) -> None:
    c = api.client
    csrf = await sign_in(c, "owner", "tnt_b")  # Core: one seat
    await c.post("/app/team/invite", data={"email": "a@b.example", "csrf_token": csrf})
    r = await c.post("/app/team/invite", data={"email": "c@b.example", "csrf_token": csrf},
                     follow_redirects=True)
    assert "no seat available" in r.text
    for role in ("ops", "auditor"):
        await sign_in(c, role)
        assert (await c.get("/app/team")).status_code == 404
        assert (await c.get("/app/outbox")).status_code == 404


async def test_the_owner_brands_the_portal_and_others_may_not(api: Api) -> None:
    c = api.client
    csrf = await sign_in(c, "owner")
    page = await c.get("/app/branding")
    assert page.status_code == 200 and "Save branding" in page.text
    logo = png(4, 4)
    r = await c.post("/app/branding", data={"display_name": "Acme Capital",
                                            "accent_color": "#0A7A5C", "csrf_token": csrf},
                     files={"logo": ("logo.png", logo, "image/png")}, follow_redirects=True)
    assert "Branding saved" in r.text and data_url("image/png", logo) in r.text
    css = await c.get("/app/brand.css")
    assert css.headers["content-type"].startswith("text/css")
    assert "--accent: #0a7a5c" in css.text
    bad = await c.post("/app/branding", data={"display_name": "A", "accent_color": "teal",
                                              "csrf_token": csrf}, follow_redirects=True)
    assert "accent_color must be a hex colour" in bad.text
    no_csrf = await c.post("/app/branding", data={"display_name": "B",
                                                  "accent_color": "#000"})
    assert no_csrf.status_code == 403
    [(actor, payload)] = await _audit(api, "branding_set")
    assert actor == "dev-owner@tnt_a" and payload["after"]["display_name"] == "Acme Capital"  # type: ignore[index]
    for role in ("ops", "auditor"):
        await sign_in(c, role)
        assert (await c.get("/app/branding")).status_code == 404


async def test_the_follower_portal_shows_only_their_account_under_the_tenant_brand(
        api: Api) -> None:
    c = api.client
    await follower_ids(c, api.auth(), n=2)
    await c.put("/v1/tenants/me/branding", headers=api.auth(),
                json={"display_name": "Acme Capital", "accent_color": "#7a1f5c",
                      "logo": data_url("image/png", png(3, 3))})
    r = await c.post("/v1/manager-orders", headers=api.auth(), json={
        "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10, "ref_price": "100",
        "reason_vector": ["SEC Form 4 Insider Buy", "Dark Pool Sweep"],
        "conviction": {"score": 0.87, "band": "A", "persona": "Apollo"}})
    assert r.status_code == 201, r.text
    await sign_in_follower(c)
    page = await c.get("/app/portal")
    assert page.status_code == 200
    text = page.text
    assert "Acme Capital" in text and 'href="/app/brand.css"' in text
    assert "<title>My account · Acme Capital</title>" in text and "· Vanta" not in text
    assert "SEC Form 4 Insider Buy" in text and "band A" in text and "Apollo" in text
    assert "F0" in text and "F1" not in text  # the first follower's own account only
    assert "--accent: #7a1f5c" in (await c.get("/app/brand.css")).text
    for path in ("/app/billing", "/app/branding", "/app/team"):
        assert (await c.get(path)).status_code == 404, path
    await sign_in(c, "owner")
    assert (await c.get("/app/portal")).status_code == 404  # a manager has no account here


async def sign_in_follower(c: httpx.AsyncClient) -> None:
    c.cookies.clear()
    r = await c.get("/app/login?tenant=tnt_a&as_role=follower&next=/app/portal",
                    follow_redirects=True)
    assert r.status_code == 200 and str(r.url).endswith("/app/portal"), r.text[:300]
    assert CSRF.search(r.text) is not None


async def test_billing_shows_the_plan_and_pays_by_checkout_or_bitcoin_invoice(api: Api
                                                                             ) -> None:
    c = api.client
    stripe, btcpay = FakeStripe(), FakeBtcpay()
    api.container.billing = BillingProviders(stripe=stripe, btcpay=btcpay,
                                             btcpay_store_id="store-1")
    csrf = await sign_in(c, "owner", "tnt_b")
    page = await c.get("/app/billing")
    assert page.status_code == 200 and "core" in page.text and "Cancel subscription" in page.text
    # tnt_b's plan was granted by hand: a new Stripe plan starts with a Checkout Session
    r = await c.post("/app/billing/change-plan", data={"plan": "pro", "provider": "stripe",
                                                       "csrf_token": csrf})
    assert r.status_code == 200 and "Continue to Stripe Checkout" in r.text
    assert 'href="https://checkout.fake.test/cs_' in r.text
    inv = await c.post("/app/billing/change-plan", data={"plan": "pro", "provider": "btcpay",
                                                         "csrf_token": csrf})
    assert inv.status_code == 200 and "Pay with bitcoin" in inv.text
    assert re.search(r"<strong>\d+(\.\d+)? USD</strong>", inv.text), inv.text
    assert "<svg" in inv.text and "QR code" in inv.text
    [(_, created)] = await _audit(api, "btcpay_invoice_created")
    assert created["plan"] == "pro"
    await sign_in(c, "auditor", "tnt_b")
    read_only = await c.get("/app/billing")
    assert read_only.status_code == 200 and "Continue to payment" not in read_only.text
    auditor_csrf = CSRF.search(read_only.text)
    assert auditor_csrf is not None
    refused = await c.post("/app/billing/change-plan", data={
        "plan": "pro", "provider": "stripe", "csrf_token": auditor_csrf.group(1)})
    assert refused.status_code == 404


async def test_fees_per_period_show_pnl_and_fee_side_by_side_with_the_mark_and_a_chart(
        api: Api) -> None:
    c = api.client
    [fid] = await follower_ids(c, api.auth(), n=1)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=30)

    def day(n: int) -> str:
        return (start + timedelta(days=n)).isoformat().replace("+00:00", "Z")

    for value, at, label in (("1000", 0, None), ("800", 1, "P1"), ("1100", 3, "P2")):
        r = await c.post(f"/v1/followers/{fid}/nav", headers=api.auth(),
                         json={"nav": value, "as_of": day(at)})
        assert r.status_code == 201, r.text
        if label is not None:
            r = await c.post(f"/v1/followers/{fid}/fees/close-period", headers=api.auth(),
                             json={"label": label, "rate": "0.2", "end": day(at + 1)})
            assert r.status_code == 201, r.text
    await sign_in(c, "owner")
    page = await c.get(f"/app/billing?follower={fid}")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td>(P\d)</td>(.*?)</tr>", page.text)
    cells = {label: re.findall(r'<td class="num">([^<]*)</td>', rest) for label, rest in rows}
    # NAV start, NAV end, flows, P&L, fee, HWM before, HWM after
    assert cells["P1"][3:5] == ["-200", "0.00"] and cells["P1"][6] == "1000"
    assert cells["P2"][3:5] == ["300", "20.00"] and cells["P2"][6] == "1100"
    assert "High-water mark: <strong>1100</strong>" in page.text
    assert '<svg class="chart"' in page.text and "high-water mark" in page.text
    await sign_in(c, "owner", "tnt_b")  # another tenant's follower: as if it did not exist
    assert (await c.get(f"/app/billing?follower={fid}")).status_code == 404
