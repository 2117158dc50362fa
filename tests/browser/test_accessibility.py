"""axe-core (npm, installed from tests/browser/package-lock.json) on every page: no
critical violation. Each page is also saved as a screenshot in test-output/browser/."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Platform, new_page, shot, sign_in


def _critical(page: Any, axe_source: str) -> list[str]:
    # evaluated through the DevTools protocol, so the page's CSP does not refuse it
    page.evaluate(axe_source)
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']}: {v['help']} ({len(v['nodes'])} nodes)"
            for v in result["violations"] if v["impact"] == "critical"]


def test_no_critical_accessibility_violation_on_any_page(
        browser: Any, platform: Platform, axe_source: str) -> None:
    status, body = platform.api("GET", "/v1/manager-orders?limit=1")
    assert status == 200
    order = body["data"][0]["mo_id"] if body["data"] else None
    _, followers = platform.api("GET", "/v1/vaults/V_CORE/followers")
    fid = followers["data"][0]["follower_id"]
    page = new_page(browser)
    # the check can fail: an image without a text alternative is a critical violation
    page.set_content('<html lang="en"><title>t</title><main><img src="x.png"></main></html>')
    assert any(v.startswith("image-alt") for v in _critical(page, axe_source))
    page.goto(platform.sign_in.replace("as_role=owner", "x=1"))  # the sign-in page itself
    pages: dict[str, str] = {"sign-in": page.url}
    sign_in(page, platform)
    for name, path in {
            "vaults": "/app/vaults", "vault": "/app/vaults/V_CORE",
            "followers": "/app/followers", "follower": f"/app/followers/{fid}",
            "follower-new": "/app/followers/new", "follower-edit": f"/app/followers/{fid}/edit",
            "orders": "/app/orders",
            "follower-orders": f"/app/orders-by-follower?follower_id={fid}",
            "dead-letters": "/app/dead-letters", "replay": f"/app/replay?follower_id={fid}",
            "operations": "/app/operations", "not-found": "/app/vaults/nope"}.items():
        pages[name] = platform.base + path
    if order is not None:
        pages["order"] = f"{platform.base}/app/orders/{order}"
    found = {}
    for name, url in pages.items():
        if name == "sign-in":
            p2 = new_page(page.context.browser)
            p2.goto(url)
            found[name] = _critical(p2, axe_source)
            shot(p2, f"a11y-{name}")
            p2.context.close()
            continue
        page.goto(url)
        found[name] = _critical(page, axe_source)
        shot(page, f"a11y-{name}")
    assert {k: v for k, v in found.items() if v} == {}
    page.context.close()
