"""The web app's safety rules over HTTP (no browser): the code flow with PKCE, the session
cookie, CSRF on every POST, the Content-Security-Policy, and pages refusing what the API
refuses (roles, ABAC, plans, other tenants) with the user named in the audit log."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.api.conftest import Api
from tests.api.web_helpers import CSRF, follower_ids, sign_in


async def test_sign_in_is_a_code_flow_with_pkce_and_a_safe_session_cookie(api: Api) -> None:
    c = api.client
    r = await c.get("/app/login?next=/app/followers&tenant=tnt_a")
    assert r.status_code == 303
    login_cookie = r.headers["set-cookie"]
    assert "vanta_login=" in login_cookie and "HttpOnly" in login_cookie
    assert "SameSite=lax" in login_cookie and "Path=/app/auth" in login_cookie
    target = urlsplit(r.headers["location"])
    q = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert target.path == "/app/auth/dev/authorize"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    page = await c.get(r.headers["location"])
    assert page.status_code == 200
    for role in ("owner", "ops", "auditor"):
        assert f"Sign in as {role}" in page.text
    assert "Sign in as follower" not in page.text  # tnt_a has no follower yet
    # the form's state must be this browser's pending sign-in (a forged post is refused)
    forged = await c.post("/app/auth/dev/authorize", data={**q, "role": "owner",
                                                            "state": "not-mine"})
    assert forged.status_code == 403
    picked = await c.post("/app/auth/dev/authorize", data={**q, "role": "owner"})
    assert picked.status_code == 303
    back = urlsplit(picked.headers["location"])
    assert back.path == "/app/auth/callback"
    done = await c.get(picked.headers["location"])
    assert done.status_code == 303 and done.headers["location"] == "/app/followers"
    cookie = done.headers["set-cookie"]
    assert cookie.startswith("vanta_session=") and "HttpOnly" in cookie
    assert "SameSite=lax" in cookie and "Path=/app" in cookie and "Secure" not in cookie
    # a code is good once: the same callback again is refused
    again = await c.get(picked.headers["location"])
    assert again.status_code in (400, 401)
    page = await c.get("/app/followers")
    assert page.status_code == 200 and "owner · tnt_a" in page.text
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and page.headers["x-frame-options"] == "DENY"


async def test_a_code_is_only_redeemed_with_its_own_verifier(api: Api) -> None:
    c = api.client
    first = await c.get("/app/login?tenant=tnt_a")
    q = {k: v[0] for k, v in parse_qs(urlsplit(first.headers["location"]).query).items()}
    picked = await c.post("/app/auth/dev/authorize", data={**q, "role": "owner"})
    code = parse_qs(urlsplit(picked.headers["location"]).query)["code"][0]
    # a second sign-in replaces the pending state and verifier in the cookie
    second = await c.get("/app/login?tenant=tnt_a")
    state2 = parse_qs(urlsplit(second.headers["location"]).query)["state"][0]
    r = await c.get(f"/app/auth/callback?code={code}&state={state2}")
    assert r.status_code == 401 and "refused" in r.text
    assert "vanta_session" not in c.cookies


async def test_pages_send_visitors_to_sign_in_and_back(api: Api) -> None:
    r = await api.client.get("/app/vaults/VA?x=1")
    assert r.status_code == 303
    assert r.headers["location"] == "/app/login?next=%2Fapp%2Fvaults%2FVA%3Fx%3D1"
    hx = await api.client.get("/app/vaults", headers={"HX-Request": "true"})
    assert hx.status_code == 401 and hx.headers["hx-redirect"].startswith("/app/login")
    root = await api.client.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/app"


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        api: Api) -> None:
    (fid, _) = await follower_ids(api.client, api.auth())
    token = await sign_in(api.client, "owner")
    url = f"/app/followers/{fid}/kill-switch"
    for data, headers in (({"on": "true"}, {}),
                          ({"on": "true", "csrf_token": "x" + token}, {}),
                          ({"on": "true"}, {"X-CSRF-Token": "stale"})):
        r = await api.client.post(url, data=data, headers=headers)
        assert r.status_code == 403 and "security token" in r.text
    got = await api.client.get(f"/v1/followers/{fid}", headers=api.auth())
    assert got.json()["kill_switch"] is False
    ok = await api.client.post(url, data={"on": "true", "csrf_token": token})
    assert ok.status_code == 303
    got = await api.client.get(f"/v1/followers/{fid}", headers=api.auth())
    assert got.json()["kill_switch"] is True
    async with api.container.uow(readonly=True) as uow:
        events = await uow.audit.for_entity("tnt_a", fid)
    change = [e for e in events if e.action == "updated"][-1]
    assert change.actor == "dev-owner@tnt_a"  # the user, as for an API call
    assert change.payload["after"]["kill_switch"] is True


async def test_roles_see_and_change_what_the_api_lets_them(api: Api) -> None:
    f1, f2 = await follower_ids(api.client, api.auth())
    c = api.client
    token = await sign_in(c, "auditor")
    page = await c.get(f"/app/followers/{f1}")
    assert page.status_code == 200 and "kill-switch" not in page.text  # reads, no forms
    r = await c.post(f"/app/followers/{f1}/kill-switch", data={"on": "true",
                                                                 "csrf_token": token})
    assert r.status_code == 404
    assert (await c.get("/app/operations")).status_code == 404
    assert (await c.get("/app/replay")).status_code == 200
    await sign_in(c, "follower")  # the tenant's first follower: f1
    vaults = await c.get("/app/vaults")
    assert "/app/vaults/VA" in vaults.text and "follower" not in vaults.text.split(
        "<main")[1].split("</main>")[0].replace("follower ·", "")
    assert (await c.get(f"/app/followers/{f1}")).status_code == 200
    for path in (f"/app/followers/{f2}", "/app/operations", "/app/replay",
                 "/app/followers/new"):
        assert (await c.get(path)).status_code == 404, path
    listed = await c.get("/app/followers")
    assert f1 in listed.text and f2 not in listed.text
    await sign_in(c, "ops")
    assert (await c.get("/app/operations")).status_code == 200
    assert (await c.get("/app/replay")).status_code == 404  # ops holds no audit:read


async def test_the_core_plan_refuses_replay_and_overlays_with_the_reason(api: Api) -> None:
    c = api.client
    token = await sign_in(c, "owner", tenant="tnt_b")
    replay = await c.get("/app/replay")
    assert replay.status_code == 403 and "plan" in replay.text
    vault = await c.get("/app/vaults/VB")
    assert "does not include flip mode" in vault.text
    r = await c.post("/app/vaults/VB/overlay", data={"kind": "flip", "amplify": "0.2",
                                                      "ttl_minutes": "5",
                                                      "csrf_token": token},
                     follow_redirects=True)
    assert "Refused" in r.text and "plan" in r.text
    overlays = await c.get("/v1/vaults/VB/overlays", headers=api.auth("tnt_b"))
    assert overlays.json()["data"] == []


async def test_another_tenants_session_sees_nothing_of_this_one(api: Api) -> None:
    (fid,) = await follower_ids(api.client, api.auth(), n=1)
    order = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": "10"})
    mo_id = order.json()["mo_id"]
    # the POST answer links its children instead of listing them
    kids = await api.client.get(order.json()["links"]["children"], headers=api.auth())
    fo_id = kids.json()["data"][0]["fo_id"]
    c = api.client
    token = await sign_in(c, "owner", tenant="tnt_b")
    for path in ("/app/vaults/VA", f"/app/followers/{fid}", f"/app/orders/{mo_id}",
                 f"/app/orders/{mo_id}/dag", f"/app/orders/{mo_id}/children",
                 f"/app/child-orders/{fo_id}/attempts", f"/app/followers/{fid}/edit"):
        r = await c.get(path)
        assert r.status_code == 404, path
        assert fid not in r.text and "VA<" not in r.text
    for path in ("/app/vaults", "/app/followers", "/app/orders", "/app/dead-letters"):
        r = await c.get(path)
        assert r.status_code == 200 and fid not in r.text and mo_id not in r.text, path
    r = await c.post(f"/app/followers/{fid}/kill-switch", data={"on": "true",
                                                                  "csrf_token": token})
    assert r.status_code == 404


async def test_edit_shows_the_sizing_preview_before_saving(api: Api) -> None:
    (fid,) = await follower_ids(api.client, api.auth(), n=1)
    await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": "o-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": "10"})
    token = await sign_in(api.client, "ops")
    form = {"label": "F0", "scale": "0.3", "mode": "proportional", "plan": "core",
            "csrf_token": token}
    r = await api.client.post(f"/app/followers/{fid}/edit", data={**form,
                                                                   "action": "preview"})
    assert r.status_code == 200 and 'id="preview"' in r.text
    assert "<td class=\"num\">5</td>" in r.text and "<td class=\"num\">3</td>" in r.text
    got = await api.client.get(f"/v1/followers/{fid}", headers=api.auth())
    assert got.json()["scale"] == "0.5"  # nothing saved by the preview
    bad = await api.client.post(f"/app/followers/{fid}/edit",
                                data={**form, "scale": "-2", "action": "preview"})
    assert bad.status_code == 422 and "scale" in bad.text
    saved = await api.client.post(f"/app/followers/{fid}/edit", data={**form,
                                                                       "action": "save"})
    assert saved.status_code == 303
    got = await api.client.get(f"/v1/followers/{fid}", headers=api.auth())
    assert got.json()["scale"] == "0.3"


async def test_registration_and_rotation_show_the_secret_once(api: Api) -> None:
    token = await sign_in(api.client, "owner")
    r = await api.client.post("/app/followers/new", data={
        "vault_id": "VA", "label": "Neo", "scale": "0.25", "plan": "core", "kind": "webhook",
        "webhook_url": "https://neo.example/hook", "csrf_token": token})
    assert r.status_code == 200 and "whsec_" in r.text and "shown this once" in r.text
    fid = r.text.split("/app/followers/")[1].split('"')[0]
    page = await api.client.get(f"/app/followers/{fid}")
    assert "whsec_" not in page.text and "Neo" in page.text
    bad = await api.client.post("/app/followers/new", data={
        "vault_id": "VA", "label": "X", "scale": "0", "kind": "webhook",
        "webhook_url": "https://x.example/h", "csrf_token": token})
    assert bad.status_code == 422 and "whsec_" not in bad.text
    rot = await api.client.post(f"/app/followers/{fid}/rotate-secret",
                                data={"overlap_hours": "1", "csrf_token": token})
    assert rot.status_code == 200 and "whsec_" in rot.text
    assert "keeps signing until" in rot.text


async def test_the_maintenance_freeze_asks_before_it_freezes(api: Api) -> None:
    token = await sign_in(api.client, "ops")
    ask = await api.client.post("/app/vaults/VA/maintenance",
                                data={"enabled": "true", "csrf_token": token})
    assert ask.status_code == 200 and "Yes, freeze the vault" in ask.text
    vault = await api.client.get("/v1/vaults/VA", headers=api.auth())
    assert vault.json()["maintenance"] is False
    done = await api.client.post("/app/vaults/VA/maintenance",
                                 data={"enabled": "true", "confirm": "yes",
                                       "csrf_token": token}, follow_redirects=True)
    assert "Vault frozen" in done.text
    vault = await api.client.get("/v1/vaults/VA", headers=api.auth())
    assert vault.json()["maintenance"] is True


async def test_order_page_children_fragment_and_dag(api: Api) -> None:
    await follower_ids(api.client, api.auth(), n=3)
    order = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": "10"})
    mo_id = order.json()["mo_id"]
    await sign_in(api.client, "auditor")
    page = await api.client.get(f"/app/orders/{mo_id}")
    assert page.status_code == 200 and page.text.count('data-state="pending"') == 3
    assert f'hx-get="/app/orders/{mo_id}/children' in page.text
    part = await api.client.get(f"/app/orders/{mo_id}/children")
    assert "<html" not in part.text and part.text.count("data-state=") == 3
    dag = await api.client.get(f"/app/orders/{mo_id}/dag")
    assert '<svg class="dag"' in dag.text and dag.text.count('data-kind="child_order"') == 3
    assert "All 3 children are drawn" in dag.text


async def test_api_reference_pages_load_their_assets_from_this_server(api: Api) -> None:
    for path in ("/docs", "/redoc"):
        page = await api.client.get(path)
        assert page.status_code == 200
        assert "/static-offline-docs/" in page.text and "cdn" not in page.text.lower()
        assert "img-src 'self' data:" in page.headers["content-security-policy"]
    asset = await api.client.get("/static-offline-docs/swagger-ui-bundle.js")
    assert asset.status_code == 200 and len(asset.content) > 100_000


async def test_every_form_on_the_pages_carries_the_sessions_csrf_token(api: Api) -> None:
    (fid,) = await follower_ids(api.client, api.auth(), n=1)
    token = await sign_in(api.client, "owner")
    for path in ("/app/vaults/VA", f"/app/followers/{fid}", f"/app/followers/{fid}/edit",
                 "/app/followers/new", "/app/dead-letters"):
        html = (await api.client.get(path)).text
        posts = html.count('method="post"')
        assert posts >= 1, path
        assert CSRF.findall(html) == [token] * posts, path


async def test_sign_out_ends_the_session_and_https_marks_the_cookie_secure(api: Api) -> None:
    token = await sign_in(api.client, "owner")
    out = await api.client.post("/app/logout", data={"csrf_token": token})
    assert out.status_code == 303 and out.headers["location"] == "/app/signed-out"
    assert 'vanta_session=""' in out.headers["set-cookie"] or \
        "Max-Age=0" in out.headers["set-cookie"]
    after = await api.client.get("/app/vaults")
    assert after.status_code == 303 and after.headers["location"].startswith("/app/login")
    secure = httpx.AsyncClient(transport=api.client._transport, base_url="https://test")
    async with secure:
        r = await secure.get("/app/login?tenant=tnt_a&as_role=owner", follow_redirects=True)
        assert r.status_code == 200
        assert all(c.secure for c in secure.cookies.jar if c.name == "vanta_session")
        assert any(c.name == "vanta_session" for c in secure.cookies.jar)


async def test_protections_are_edited_with_the_preview_and_keep_the_symbol_map(
        api: Api) -> None:
    (fid,) = await follower_ids(api.client, api.auth(), n=1)
    await api.client.patch(f"/v1/followers/{fid}", headers=api.auth(),
                           json={"protections": {"symbol_map": {"BRK.B": "BRK-B"}}})
    await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": "o-2", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": "10"})
    token = await sign_in(api.client, "ops")
    edit = await api.client.get(f"/app/followers/{fid}/edit")
    assert 'name="deny_symbols"' in edit.text and 'name="drawdown_stop_pct"' in edit.text
    form = {"label": "F0", "scale": "0.5", "mode": "proportional", "plan": "core",
            "deny_symbols": "aapl, msft", "max_order_usd": "1000", "csrf_token": token}
    r = await api.client.post(f"/app/followers/{fid}/edit", data={**form,
                                                                   "action": "preview"})
    assert r.status_code == 200 and "symbol_not_allowed" in r.text.split('id="preview"')[1]
    saved = await api.client.post(f"/app/followers/{fid}/edit", data={**form,
                                                                       "action": "save"})
    assert saved.status_code == 303
    got = (await api.client.get(f"/v1/followers/{fid}", headers=api.auth())).json()
    assert got["protections"]["deny_symbols"] == ["AAPL", "MSFT"]
    assert got["protections"]["max_order_usd"] == "1000"
    assert got["protections"]["symbol_map"] == {"BRK.B": "BRK-B"}
