"""Plans, seats and invitations, the pull feed, roles and follower-scoped tokens."""

from __future__ import annotations

import json
from typing import Any

from tests.api.conftest import Api


async def _follower(api: Api, **kw: Any) -> str:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": {"url": "https://f.example/h"}, **kw})
    assert r.status_code == 201, r.text
    return r.json()["follower_id"]


async def _order(api: Api, oid: str) -> dict[str, Any]:
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10})
    assert r.status_code == 201, r.text
    out = r.json()
    kids = await api.client.get(out["links"]["children"], headers=api.auth())
    return {**out, "children": kids.json()["data"]}


def _sse(text: str) -> list[dict[str, Any]]:
    events, cur = [], {}
    for line in text.splitlines():
        if not line.strip():
            if cur:
                events.append(cur)
            cur = {}
        elif not line.startswith(":"):
            k, _, v = line.partition(":")
            cur[k] = v.strip()
    return [{**e, "data": json.loads(e["data"])} for e in events if "data" in e]


async def test_subscription_me_resolves_plan_features(api: Api) -> None:
    a = (await api.client.get("/v1/subscriptions/me", headers=api.auth())).json()
    assert a["plan"] == "institutional" and a["status"] == "active"
    assert a["entitlements"]["features"]["api_pull_feed"] is True
    b = (await api.client.get("/v1/subscriptions/me", headers=api.auth("tnt_b"))).json()
    assert b["plan"] == "core" and b["entitlements"]["features"]["flip_mode"] is False


async def test_plan_gates_overlays_replay_and_feed(api: Api) -> None:
    from vanta.application.seed import create_vault
    await create_vault(api.container.uow(), tenant_id="tnt_b", vault_id="VB2", label="B2")
    r = await api.client.post("/v1/vaults/VB2/overlay", headers=api.auth("tnt_b"),
                              json={"persona": "Apollo"})
    assert r.status_code == 403 and r.json()["code"] == "plan_lacks_feature"
    r = await api.client.post("/v1/vaults/VB2/overlay", headers=api.auth("tnt_b"),
                              json={"maintenance": {"enabled": True}})
    assert r.status_code == 201, "maintenance is a safety control on every plan"
    r = await api.client.get("/v1/feed", params={"follow": "false"}, headers=api.auth("tnt_b"))
    assert r.status_code == 403


async def test_invitations_respect_seats_and_bind_one_identity(api: Api) -> None:
    r = await api.client.post("/v1/invitations", headers=api.auth("tnt_b"),
                              json={"email": "a@b.example", "role": "ops"})
    assert r.status_code == 201
    r2 = await api.client.post("/v1/invitations", headers=api.auth("tnt_b"),
                               json={"email": "c@b.example"})
    assert r2.status_code == 409 and r2.json()["code"] == "seat_limit_reached"  # core: 1 seat
    token = r.json()["token"]
    ok = await api.client.post(f"/v1/invitations/{token}/accept", json={"oidc_sub": "idp|42"})
    assert ok.status_code == 201 and ok.json()["tenant_id"] == "tnt_b"
    again = await api.client.post(f"/v1/invitations/{token}/accept", json={"oidc_sub": "x"})
    assert again.status_code == 404 and again.json()["code"] == "invitation_not_found"
    users = (await api.client.get("/v1/users", headers=api.auth("tnt_b"))).json()
    assert [u["role"] for u in users["data"]] == ["ops"]
    bad = await api.client.post("/v1/invitations", headers=api.auth(),
                                json={"email": "nope", "role": "ops"})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_email"


async def test_feed_streams_intents_and_children_resumably(api: Api) -> None:
    await _follower(api)
    await _order(api, "M-1")
    r = await api.client.get("/v1/feed", params={"follow": "false"}, headers=api.auth())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = _sse(r.text)
    assert [e["event"] for e in events] == ["manager_order", "follower_order"]
    last = events[-1]["id"]
    await _order(api, "M-2")
    r = await api.client.get("/v1/feed", params={"follow": "false"},
                             headers={**api.auth(), "Last-Event-ID": last})
    resumed = _sse(r.text)
    assert [e["data"]["client_order_id"] for e in resumed
            if e["event"] == "manager_order"] == ["M-2"]
    assert all(int(e["id"]) > int(last) for e in resumed)


async def test_follower_token_sees_only_its_own_follower(api: Api) -> None:
    mine = await _follower(api)
    other = await _follower(api)
    body = await _order(api, "M-1")
    tok = api.container.issuer.issue("f-user", "tnt_a", ["vault:read", "orders:read"],
                                     roles=["follower"], follower_id=mine)
    h = {"Authorization": f"Bearer {tok}"}
    rows = (await api.client.get("/v1/follower-orders", headers=h)).json()["data"]
    assert {r["follower_id"] for r in rows} == {mine}
    r = await api.client.get("/v1/follower-orders", params={"follower_id": other}, headers=h)
    assert r.status_code == 404
    assert (await api.client.get(f"/v1/followers/{other}", headers=h)).status_code == 404
    assert (await api.client.get(f"/v1/followers/{mine}", headers=h)).status_code == 200
    mo = (await api.client.get(f"/v1/manager-orders/{body['mo_id']}", headers=h)).json()
    assert {c["follower_id"] for c in mo["children"]} == {mine}
    other_fo = next(c["fo_id"] for c in body["children"] if c["follower_id"] == other)
    r = await api.client.get(f"/v1/follower-orders/{other_fo}/attempts", headers=h)
    assert r.status_code == 404
    feed = _sse((await api.client.get("/v1/feed", params={"follow": "false"},
                                      headers=h)).text)
    assert {e["data"].get("follower_id") for e in feed
            if e["event"] == "follower_order"} == {mine}


async def test_roles_cap_what_a_token_can_claim(api: Api) -> None:
    tok = api.container.issuer.issue("aud", "tnt_a", ["mirror:manage", "orders:read"],
                                     roles=["auditor"])
    h = {"Authorization": f"Bearer {tok}"}
    r = await api.client.post("/v1/manager-orders", headers=h, json={
        "id": "X", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 1})
    assert r.status_code == 403, "an auditor's token cannot carry mirror:manage"
    assert (await api.client.get("/v1/manager-orders", headers=h)).status_code == 200


async def test_vault_scoped_token(api: Api) -> None:
    from vanta.application.seed import create_vault
    await create_vault(api.container.uow(), tenant_id="tnt_a", vault_id="VA2", label="A2")
    tok = api.container.issuer.issue("ops", "tnt_a", ["vault:read", "orders:read"],
                                     vault_ids=["VA2"])
    h = {"Authorization": f"Bearer {tok}"}
    vaults = (await api.client.get("/v1/vaults", headers=h)).json()["data"]
    assert [v["vault_id"] for v in vaults] == ["VA2"]
    assert (await api.client.get("/v1/vaults/VA", headers=h)).status_code == 404


async def test_token_endpoint_without_oidc(api: Api) -> None:
    r = await api.client.post("/v1/auth/token", json={"grant_type": "client_credentials"})
    assert r.status_code == 409 and r.json()["code"] == "oidc_not_configured"


async def test_entitlements_are_cached_and_dropped_on_every_change(api: Api) -> None:
    from sqlalchemy import update

    from vanta.adapters.db.tables import subscriptions
    from vanta.application.tenancy import grant_plan
    assert (await api.client.get("/v1/subscriptions/me",
                                 headers=api.auth("tnt_b"))).json()["plan"] == "core"
    async with api.container.engine.begin() as conn:  # behind the cache's back
        await conn.execute(update(subscriptions).where(subscriptions.c.tenant_id == "tnt_b")
                           .values(status="canceled"))
    cached = (await api.client.get("/v1/subscriptions/me", headers=api.auth("tnt_b"))).json()
    assert cached["entitlements"]["active"] is True, "served from the cache"
    await grant_plan(api.container.uow(), tenant_id="tnt_b", plan_id="pro", actor="test")
    fresh = (await api.client.get("/v1/subscriptions/me", headers=api.auth("tnt_b"))).json()
    assert fresh["plan"] == "pro", "a change through the application drops the cached entry"
