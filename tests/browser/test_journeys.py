"""Journeys through the web app in a real Chromium, against a real ``vanta up``."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import (
    CORE_TENANT,
    CORE_VAULT,
    Platform,
    free_port,
    new_page,
    shot,
    sign_in,
)


def _register(page: Any, label: str, url: str) -> tuple[str, str]:
    """Registers a webhook follower of V_CORE from the form; its id and the secret shown."""
    page.goto(page.url.split("/app")[0] + "/app/followers/new?vault_id=V_CORE")
    page.fill("#label", label)
    page.fill("#scale", "1")
    page.fill("#url", url)
    page.click("button:text('Register')")
    page.wait_for_selector("#secret, main .flash.error, main h1")
    assert page.locator("main .flash.error").count() == 0, page.text_content("main")
    secret = page.text_content("#secret")
    assert secret is not None and secret.startswith("whsec_")
    link = page.get_attribute("main a[href^='/app/followers/']", "href")
    assert link is not None
    return link.rsplit("/", 1)[1], secret


def _row_state(page: Any, fo_id: str) -> str:
    return str(page.get_attribute(f"#fo-{fo_id}", "data-state"))


def _child_of(order: dict[str, Any], follower_id: str) -> str:
    return next(c["fo_id"] for c in order["children"] if c["follower_id"] == follower_id)


def test_main_journey(browser: Any, platform: Platform) -> None:
    page = new_page(browser)
    page.goto(platform.sign_in)  # the one-click link `vanta up` printed
    page.wait_for_selector("h1:text('Vaults')")
    shot(page, "01-vaults")
    eve, secret = _register(page, "Eve", f"{platform.receiver}/hooks/eve")
    shot(page, "02-secret-once")
    platform.give_receiver_secret("eve", secret)
    # Zed's endpoint is a closed port: retried twice, then dead-lettered
    zed, _ = _register(page, "Zed", f"http://127.0.0.1:{free_port()}/hooks/zed")

    order = platform.order(id="journey-1")
    page.goto(f"{platform.base}/app/orders/{order['mo_id']}")
    page.evaluate("window.__notReloaded = true")
    eve_fo, zed_fo = _child_of(order, eve), _child_of(order, zed)
    first = _row_state(page, zed_fo)
    assert first != "dlq"
    # htmx swaps the children in place: the states move on the open page
    page.wait_for_selector(f"#fo-{eve_fo}[data-state='ack']")
    page.wait_for_selector(f"#fo-{zed_fo}[data-state='dlq']", timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True
    page.click("button:text('Redraw the DAG')")  # drawn on load; now with the attempts
    page.wait_for_selector("svg.dag g[data-kind='attempt']")
    shot(page, "03-order", full_page=False)

    # the live feed: a new order shows up on the open Orders page
    page.goto(f"{platform.base}/app/orders")
    page.evaluate("window.__notReloaded = true")
    for nav, ago in (("10000", "2026-01-01T00:00:00Z"), ("10400", "2026-02-01T00:00:00Z")):
        status, _ = platform.api("POST", f"/v1/followers/{eve}/nav",
                                 {"nav": nav, "as_of": ago})
        assert status == 201
    page.goto(f"{platform.base}/app/followers/{eve}")
    assert "Latest NAV: 10,400 USD" in page.text_content("svg.chart desc")
    page.click("button:text('Switch the kill switch on')")
    assert "Kill switch on" in page.text_content("main .flash")
    feed = new_page(browser)
    sign_in(feed, platform)
    feed.goto(f"{platform.base}/app/orders")
    second = platform.order(id="journey-2", qty="5")
    feed.wait_for_selector(f"#feed #mo-{second['mo_id']}")
    shot(feed, "04-orders-live")
    feed.context.close()

    page.goto(f"{platform.base}/app/orders/{second['mo_id']}")
    skipped = f"#fo-{_child_of(second, eve)}"
    assert _row_state(page, _child_of(second, eve)) == "skipped"
    assert "kill_switch" in page.text_content(skipped)

    page.goto(f"{platform.base}/app/dead-letters")
    page.check(f"#dl-{zed_fo}")
    shot(page, "05-dead-letters")
    page.click("button:text('Redeliver the chosen ones')")
    assert "1 queued again" in page.text_content("main .flash")

    page.goto(f"{platform.base}/app/operations")
    page.wait_for_selector("svg.chart")
    shot(page, "06-operations")
    page.goto(f"{platform.base}/app/vaults/V_CORE")
    page.click("button:text('Apply persona boost')")
    assert "Overlay applied" in page.text_content("main .flash")
    first_left = page.text_content("[data-expires]")
    page.wait_for_function(  # the countdown ticks in the page
        "t => document.querySelector('[data-expires]').textContent !== t", arg=first_left)
    assert "left" in page.text_content("[data-expires]")
    shot(page, "09-vault-overlay")
    assert page.csp_errors == []
    page.context.close()


def test_role_and_plan_refusals(browser: Any, platform: Platform) -> None:
    page = new_page(browser)
    sign_in(page, platform, "follower")
    page.goto(f"{platform.base}/app/operations")
    assert page.text_content("h1") == "Not found"
    nav = page.text_content("header nav")
    assert "Operations" not in nav and "Replay" not in nav and "Followers" not in nav
    page.goto(f"{platform.base}/app/vaults")
    assert page.locator("main .card").count() == 1  # only the follower's own vault
    page.context.close()

    page = new_page(browser)
    sign_in(page, platform, "auditor")
    page.goto(f"{platform.base}/app/vaults/V_CORE")
    assert page.locator("main form").count() == 0  # reads everything, changes nothing
    page.goto(f"{platform.base}/app/replay")
    assert "intact" in page.text_content("#chain")
    shot(page, "10-replay")
    page.context.close()

    page = new_page(browser)
    sign_in(page, platform, "owner", tenant=CORE_TENANT)
    page.goto(f"{platform.base}/app/replay")
    assert "plan" in page.text_content("main")
    page.goto(f"{platform.base}/app/vaults/{CORE_VAULT}")
    assert "does not include flip mode" in page.text_content("main")
    page.click("button:text('Apply flip mode')")
    assert "Refused" in page.text_content("main .flash.error")
    page.context.close()


def test_a_post_without_the_csrf_token_is_refused(browser: Any, platform: Platform) -> None:
    page = new_page(browser)
    sign_in(page, platform)
    r = page.request.post(f"{platform.base}/app/vaults/V_CORE/maintenance",
                          form={"enabled": "true", "confirm": "yes"})
    assert r.status == 403
    status, vault = platform.api("GET", "/v1/vaults/V_CORE")
    assert status == 200 and vault["maintenance"] is False
    page.context.close()


def test_another_tenants_session_sees_nothing(browser: Any, platform: Platform) -> None:
    mo_id = platform.order(id="other-tenant-probe")["mo_id"]
    _, followers = platform.api("GET", "/v1/vaults/V_CORE/followers")
    fid = followers["data"][0]["follower_id"]
    page = new_page(browser)
    sign_in(page, platform, "owner", tenant=CORE_TENANT)
    for path in ("/app/vaults/V_CORE", f"/app/orders/{mo_id}", f"/app/followers/{fid}"):
        page.goto(platform.base + path)
        assert page.text_content("h1") == "Not found"
    page.goto(f"{platform.base}/app/followers")
    assert "Ada" not in page.text_content("main")  # the demo tenant's followers
    page.goto(f"{platform.base}/app/vaults")
    assert "Core Growth" not in page.text_content("main")
    page.context.close()


def test_phone_width_journey(browser: Any, platform: Platform) -> None:
    page = new_page(browser, width=390, height=844)
    sign_in(page, platform, "ops")
    for path in ("/app/vaults/V_CORE", "/app/followers", "/app/orders", "/app/operations"):
        page.goto(platform.base + path)
        # nothing wider than the phone: no sideways scrolling of the page itself
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    page.goto(f"{platform.base}/app/followers")
    page.click("main table a >> nth=0")
    page.click("text=Edit settings")
    page.fill("#scale", "0.4")
    page.click("button:text('Preview sizing')")
    page.wait_for_selector("#preview")
    shot(page, "07-phone-edit-preview", full_page=False)
    page.click("button:text('Save these settings')")
    assert "Settings saved" in page.text_content("main .flash")
    assert page.csp_errors == []
    page.context.close()
