"""Onboarding, billing, branding and the follower portal in a real Chromium (Playwright for
Python driving Debian's ``chromium``) against one ``vanta up`` process whose mail goes to a
real SMTP server (aiosmtpd) on loopback. The invitation journey reads the received mail,
follows its link and accepts. Without chromium or Playwright the tests skip with the reason;
with ``CI=true`` they fail instead. Screenshots go to ``test-output/browser/`` (not in git).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import new_page
from tests.e2e.processes import Processes
from tests.http_helpers import UNLIMITED_ENV
from tests.images import png
from tests.integration.billing_fakes import FakeBtcpay, StripeSim, stripe_signature
from tests.smtp_server import SmtpServer, plain_text, running_smtp

ROOT = Path(__file__).parent.parent.parent
SHOTS = ROOT / "test-output" / "browser"
VANTA = Path(sys.executable).with_name("vanta")
LINK = re.compile(r"(https?://\S+/app/invitations/[A-Za-z0-9_-]+)")
BTCPAY_SECRET = "btcpay-webhook-secret"
STRIPE_SECRET = "whsec_browser_tests"
PRICES = {"core": "price_core", "pro": "price_pro", "institutional": "price_inst"}


class PeerLoop:
    """An event loop in a thread of its own for the fake BTCPay Server (the tests drive
    Playwright's sync API in this thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=30)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def _serve(app: Any, port: int) -> Any:
    from aiohttp import web
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"browser tests cannot run: {reason} (CI=true: they are required)")
    pytest.skip(f"browser tests cannot run: {reason}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Platform:
    base: str
    token: str  # the dev token `vanta up` printed (owner of the demo tenant)
    smtp: SmtpServer
    btcpay: FakeBtcpay
    peers: PeerLoop
    stripe: StripeSim

    def stripe_event(self, event: dict[str, Any]) -> int:
        """Delivers one Stripe event to the platform's webhook, signed as Stripe does."""
        raw = json.dumps(event).encode()
        req = urllib.request.Request(
            f"{self.base}/v1/billing/webhooks/stripe", data=raw, method="POST",
            headers={"Content-Type": "application/json",
                     "Stripe-Signature": stripe_signature(raw, STRIPE_SECRET)})
        with urllib.request.urlopen(req, timeout=10) as r:
            return int(r.status)

    def api(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers={
            "Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
            "Idempotency-Key": str(uuid.uuid4())})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


def _wait(proc: Any, out: Path, base: str) -> str:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"vanta up exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=1):
                return out.read_text()
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("vanta up did not answer")


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    if not VANTA.exists():
        unavailable("the vanta console script is not installed")
    root = tmp_path_factory.mktemp("onboard-browser")
    port, btc_port, stripe_port = _free_port(), _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    btc, peers, sim = FakeBtcpay(), PeerLoop(), StripeSim()
    for plan, price in PRICES.items():
        sim.add_price(price, {"core": 1900, "pro": 4900}.get(plan, 49900))
    btc.webhooks.append((f"{base}/v1/billing/webhooks/btcpay", BTCPAY_SECRET))
    runner = peers.run(_serve(btc.app, btc_port))
    stripe_runner = peers.run(_serve(sim.app, stripe_port))
    with running_smtp() as smtp:
        env = {**os.environ, **UNLIMITED_ENV, "VANTA_DATA_DIR": str(root / "data"),
               "VANTA_SMTP_HOST": smtp.host, "VANTA_SMTP_PORT": str(smtp.port),
               "VANTA_SMTP_TLS": "none", "VANTA_PUBLIC_APP_URL": base,
               "VANTA_BTCPAY_URL": f"http://127.0.0.1:{btc_port}",
               "VANTA_BTCPAY_API_KEY": btc.api_key, "VANTA_BTCPAY_STORE_ID": "store_main",
               "VANTA_BTCPAY_WEBHOOK_SECRET": BTCPAY_SECRET,
               "VANTA_STRIPE_API_KEY": sim.api_key, "VANTA_STRIPE_WEBHOOK_SECRET": STRIPE_SECRET,
               "VANTA_STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}",
               "VANTA_STRIPE_PRICE_IDS": json.dumps(PRICES)}
        procs = Processes(root)
        proc = procs.start("up", [str(VANTA), "up", "--port", str(port), "--receiver-port",
                                  str(_free_port()), "--data-dir", str(root / "data")], env)
        try:
            printed = _wait(proc, root / "up.out", base)
            token = re.search(r"Dev token.*\n(\S+)", printed)
            assert token, printed
            yield Platform(base, token.group(1), smtp, btc, peers, sim)
        finally:
            procs.stop_all()
            peers.run(runner.cleanup())
            peers.run(stripe_runner.cleanup())
            peers.stop()


def _page(browser: Any, width: int = 1200, height: int = 900) -> Any:
    return new_page(browser, width=width, height=height)  # it collects CSP refusals


def _sign_in(page: Any, platform: Platform, role: str, next_path: str) -> None:
    page.goto(f"{platform.base}/app/login?as_role={role}&next={next_path}")
    page.wait_for_url(f"**{next_path}")


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_an_invitation_is_mailed_over_smtp_and_its_link_signs_the_invitee_in(
        platform: Platform, browser: Any) -> None:
    owner = _page(browser)
    _sign_in(owner, platform, "owner", "/app/team")
    owner.fill("#email", "ada@corp.example")
    owner.select_option("#role", "auditor")
    owner.click("text=Send invitation")
    owner.wait_for_selector("text=Invitation sent to ada@corp.example")
    _shot(owner, "team")
    assert platform.smtp.arrived.wait(10), "no mail reached the SMTP server"
    [msg] = [m for m in platform.smtp.received if m["To"] == "ada@corp.example"]
    link = LINK.search(plain_text(msg))
    assert link is not None and link.group(1).startswith(platform.base)
    invitee = _page(browser)  # another browser: no session
    invitee.goto(link.group(1))
    _shot(invitee, "accept-invitation")
    invitee.click("text=Accept and sign in")
    invitee.wait_for_selector("text=auditor · tnt_demo")
    # the new auditor reads but may not manage the team
    resp = invitee.goto(f"{platform.base}/app/team")
    assert resp is not None and resp.status == 404
    invitee.goto(link.group(1))  # a used link is refused in plain words
    invitee.click("text=Accept and sign in")
    invitee.wait_for_selector("text=no open invitation")


def test_a_visitor_signs_up_and_is_taken_to_choose_a_plan(platform: Platform,
                                                          browser: Any) -> None:
    page = _page(browser, 390, 844)  # phone width
    page.goto(f"{platform.base}/app/signup")
    page.fill("#name", "Nova Fund")
    page.fill("#email", "eve@nova.example")
    page.check("#plan-pro")
    _shot(page, "signup-390")
    page.click("text=Create organisation")
    page.wait_for_url("**/app/billing?plan=pro")
    assert page.is_visible("text=Choose a plan and pay")
    assert page.is_visible("text=You chose the pro plan")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width} px)"
    _shot(page, "billing-after-signup-390")
    # pay with bitcoin: the invoice's amount and a QR code, drawn by the server
    page.select_option("#plan", "pro")
    page.select_option("#provider", "btcpay")
    page.click("text=Continue to payment")
    page.wait_for_selector("text=Pay with bitcoin")
    assert page.is_visible("text=49.00 USD")
    assert page.locator(".qr svg path").count() >= 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    _shot(page, "btcpay-invoice-390")
    invoice_id = page.inner_text("dl.facts dd.mono >> nth=0").strip()
    assert invoice_id in platform.btcpay.invoices
    # BTCPay sees the payment settle and calls the platform's webhook
    for delivery in platform.btcpay.receive_payment(invoice_id, "49.00"):
        assert platform.peers.run(platform.btcpay.deliver(delivery)) == [200]
    page.goto(f"{platform.base}/app/billing")
    assert page.is_visible("text=Change plan")  # a paid plan now
    assert "pro" in page.inner_text("section.card dl.facts")


def test_the_owner_brands_the_follower_portal(platform: Platform, browser: Any,
                                              tmp_path: Path) -> None:
    status, body = platform.api("POST", "/v1/manager-orders", {
        "vault_id": "V_CORE", "symbol": "MSFT", "side": "buy", "qty": "10",
        "ref_price": "100", "reason_vector": ["Dark Pool Sweep > $5M"],
        "conviction": {"score": 0.91, "band": "A", "persona": "Apollo"}})
    assert status == 201, body
    owner = _page(browser)
    _sign_in(owner, platform, "owner", "/app/branding")
    logo = tmp_path / "logo.png"
    logo.write_bytes(png(16, 16))
    owner.fill("#display_name", "Acme Capital")
    owner.fill("#accent_color", "#7a1f5c")
    owner.set_input_files("#logo", str(logo))
    owner.click("text=Save branding")
    owner.wait_for_selector("text=Branding saved")
    _shot(owner, "branding")
    follower = _page(browser, 390, 844)
    _sign_in(follower, platform, "follower", "/app/portal")
    assert follower.title() == "My account · Acme Capital"
    assert follower.inner_text(".brand").strip() == "Acme Capital"
    assert follower.locator(".brand img").count() == 1
    accent = follower.evaluate(
        "getComputedStyle(document.documentElement).getPropertyValue('--accent').trim()")
    assert accent == "#7a1f5c"
    follower.wait_for_selector("text=Dark Pool Sweep > $5M")
    assert follower.is_visible("text=band A") and follower.is_visible("text=Apollo")
    _shot(follower, "portal-390")
    for path in ("/app/billing", "/app/branding", "/app/team", "/app/outbox"):
        resp = follower.goto(platform.base + path)
        assert resp is not None and resp.status == 404, path


def test_billing_shows_plan_entitlements_and_refuses_what_a_role_may_not(
        platform: Platform, browser: Any) -> None:
    owner = _page(browser)
    _sign_in(owner, platform, "owner", "/app/billing")
    assert owner.is_visible("text=Entitlements")
    assert owner.is_visible("text=Cancel subscription")
    _shot(owner, "billing")
    auditor = _page(browser)
    _sign_in(auditor, platform, "auditor", "/app/billing")
    assert auditor.is_visible("text=Entitlements")
    assert not auditor.is_visible("text=Cancel subscription")
    resp = auditor.goto(f"{platform.base}/app/branding")
    assert resp is not None and resp.status == 404


def test_no_critical_accessibility_violation_and_no_csp_refusal_on_these_pages(
        platform: Platform, browser: Any, axe_source: str) -> None:
    status, invitation = platform.api("POST", "/v1/invitations",
                                      {"email": "a11y@corp.example", "role": "ops"})
    assert status == 201, invitation
    _, followers = platform.api("GET", "/v1/vaults/V_CORE/followers")
    fid = followers["data"][0]["follower_id"]
    visitor = _page(browser)
    owner = _page(browser)
    _sign_in(owner, platform, "owner", "/app/team")
    follower = _page(browser, 390, 844)
    _sign_in(follower, platform, "follower", "/app/portal")
    pages = [(visitor, "/app/signup"), (visitor, f"/app/invitations/{invitation['token']}"),
             (owner, "/app/team"), (owner, "/app/billing"),
             (owner, f"/app/billing?follower={fid}"), (owner, "/app/branding"),
             (follower, "/app/portal")]
    found = {}

    def check(page: Any, name: str) -> None:
        page.evaluate(axe_source)  # through DevTools: the page's CSP does not apply to it
        result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
        found[name] = [f"{v['id']}: {v['help']}" for v in result["violations"]
                       if v["impact"] == "critical"]
        _shot(page, "a11y-" + name.strip("/").replace("/", "-").split("?")[0][:40])

    for page, path in pages:
        page.goto(platform.base + path)
        check(page, path)
    for provider in ("btcpay", "stripe"):  # the pages a payment starts on
        owner.goto(f"{platform.base}/app/billing")
        owner.select_option("#provider", provider)
        owner.click("text=Continue to payment")
        owner.wait_for_selector("h1:has-text('Pay')")
        check(owner, f"pay-{provider}")
    assert {k: v for k, v in found.items() if v} == {}
    for page in (visitor, owner, follower):
        assert page.csp_errors == []


def test_a_new_tenant_pays_by_stripe_checkout_and_gets_its_plan(platform: Platform,
                                                                browser: Any) -> None:
    page = _page(browser)
    page.goto(f"{platform.base}/app/signup")
    page.fill("#name", "Orbit Partners")
    page.fill("#email", "ola@orbit.example")
    page.check("#plan-core")
    page.click("text=Create organisation")
    page.wait_for_url("**/app/billing?plan=core")
    # the hosted payment page is Stripe's: this machine is offline, so the browser is
    # answered locally at that address (the redirect itself is what is checked)
    page.route("https://checkout.stripe.com/**", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body="<html lang=en><title>Checkout</title><h1>Stripe Checkout</h1></html>"))
    page.select_option("#provider", "stripe")
    page.click("text=Continue to payment")
    page.click("text=Continue to Stripe Checkout")
    page.wait_for_url("https://checkout.stripe.com/c/pay/*")
    session_id = page.url.rsplit("/", 1)[1]
    assert session_id in platform.stripe.sessions
    # the customer pays; Stripe tells the platform through its signed webhooks
    for event in platform.stripe.complete_checkout(session_id):
        assert platform.stripe_event(event) == 200
    page.goto(f"{platform.base}/app/billing")
    facts = page.inner_text("section.card dl.facts")
    assert "core" in facts and "stripe" in facts and "active" in facts
    assert page.is_visible("text=Change plan")
    # Core has one seat, the owner's: the app refuses a teammate as the API does
    page.goto(f"{platform.base}/app/team")
    assert page.is_visible("text=1 used (members and open invitations) of 1")
    page.fill("#email", "second@orbit.example")
    page.click("text=Send invitation")
    page.wait_for_selector(".flash.error >> text=no seat available")
    assert not any(m["To"] == "second@orbit.example" for m in platform.smtp.received)
