"""Bad input gets a problem+json with a stable code and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Api

GOOD = {"id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
        "ref_price": 100}


async def _counts(api: Api) -> tuple[int, int]:
    async with api.container.uow() as uow:
        mos = await uow.manager_orders.list("tnt_a", None, 10_000)
        fos = await uow.child_orders.list("tnt_a", follower_id=None, mo_id=None, since=None,
                                          limit=10_000)
    return len(mos), len(fos)


async def _follower(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"scale": "0.5", "webhook": {"url": "http://127.0.0.1:9/x"}})
    assert r.status_code == 201, r.text


@pytest.mark.parametrize(("body", "status", "code"), [
    ({**GOOD, "qty": 0}, 422, "invalid_quantity"),
    ({**GOOD, "qty": -3}, 422, "invalid_quantity"),
    ({**GOOD, "qty": "abc"}, 422, "invalid_quantity"),
    ({**GOOD, "qty": 1e300}, 422, "quantity_out_of_range"),
    ({**GOOD, "qty": 10**40}, 422, "quantity_out_of_range"),
    ({**GOOD, "side": "short"}, 422, "invalid_side"),
    ({**GOOD, "vault_id": "NOPE"}, 404, "vault_not_found"),
    ({**GOOD, "vault_id": "VB"}, 404, "vault_not_found"),  # another tenant's vault
    ({**GOOD, "ref_price": "NaN"}, 422, "invalid_price"),
    ({k: v for k, v in GOOD.items() if k != "qty"}, 422, "missing_field"),
])
async def test_bad_orders_are_refused_and_change_nothing(api: Api, body: dict, status: int,
                                                         code: str) -> None:
    await _follower(api)
    before = await _counts(api)
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json=body)
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["code"] == code and problem["status"] == status
    assert problem["type"].endswith(code) and problem["detail"]
    assert await _counts(api) == before


async def test_malformed_json(api: Api) -> None:
    r = await api.client.post("/v1/manager-orders", headers={**api.auth(),
                              "content-type": "application/json"}, content=b"{not json")
    assert r.status_code == 400 and r.json()["code"] == "malformed_json"


async def test_reusing_an_order_id_for_another_order_is_a_conflict(api: Api) -> None:
    await _follower(api)
    assert (await api.client.post("/v1/manager-orders", headers=api.auth(),
                                  json=GOOD)).status_code == 201
    before = await _counts(api)
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={**GOOD, "qty": 11})
    assert r.status_code == 409 and r.json()["code"] == "order_id_conflict"
    assert await _counts(api) == before


async def test_vault_in_maintenance_refuses_new_orders(api: Api) -> None:
    from sqlalchemy import update

    from vanta.adapters.db.tables import vaults
    async with api.container.engine.begin() as conn:
        await conn.execute(update(vaults).where(vaults.c.vault_id == "VA")
                           .values(maintenance=True))
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json=GOOD)
    assert r.status_code == 409 and r.json()["code"] == "vault_in_maintenance"
    assert await _counts(api) == (0, 0)


@pytest.mark.parametrize("url", ["ftp://example.com/x", "file:///etc/passwd", "javascript:1",
                                 "not a url", "http://user:pw@example.com/x", 42])
async def test_non_http_webhook_url_is_refused(api: Api, url: object) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"scale": 1, "webhook": {"url": url}})
    assert r.status_code == 422 and r.json()["code"] == "invalid_webhook_url"
    assert r.json()["field"] == "webhook.url"
    async with api.container.uow() as uow:
        assert await uow.followers.list_for_vault("tnt_a", "VA") == []


@pytest.mark.parametrize(("body", "code"), [
    ({"scale": 0, "webhook": {"url": "http://x.test/h"}}, "invalid_scale"),
    ({"scale": "-1", "webhook": {"url": "http://x.test/h"}}, "invalid_scale"),
    ({"max_pos_usd": "abc", "webhook": {"url": "http://x.test/h"}}, "invalid_cap"),
    ({"mode": "capped", "webhook": {"url": "http://x.test/h"}}, "cap_required"),
    ({"mode": "yolo", "webhook": {"url": "http://x.test/h"}}, "invalid_mode"),
    ({"scale": 1}, "missing_field"),
])
async def test_bad_follower_settings(api: Api, body: dict, code: str) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json=body)
    assert r.status_code == 422 and r.json()["code"] == code


async def test_auth_is_checked_on_every_call(api: Api) -> None:
    for method, path in [("GET", "/v1/vaults"), ("GET", "/v1/vaults/VA"),
                         ("GET", "/v1/manager-orders"), ("GET", "/v1/follower-orders"),
                         ("POST", "/v1/manager-orders"), ("POST", "/v1/vaults/VA/followers")]:
        r = await api.client.request(method, path)
        assert r.status_code == 401 and r.json()["code"] == "unauthenticated", path
        r = await api.client.request(method, path, headers={"Authorization": "Bearer x.y.z"})
        assert r.status_code == 401 and r.json()["code"] == "invalid_token", path


async def test_scopes_are_enforced(api: Api) -> None:
    r = await api.client.post("/v1/manager-orders", json=GOOD,
                              headers=api.auth(scopes=("vault:read", "orders:read")))
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"


async def test_tenants_see_only_their_own(api: Api) -> None:
    r = await api.client.get("/v1/vaults", headers=api.auth("tnt_b"))
    assert [v["vault_id"] for v in r.json()["data"]] == ["VB"]
    r = await api.client.get("/v1/vaults/VA", headers=api.auth("tnt_b"))
    assert r.status_code == 404 and "VA" not in str(r.json().get("data", ""))


async def test_bad_since(api: Api) -> None:
    r = await api.client.get("/v1/manager-orders", params={"since": "yesterday"},
                             headers=api.auth())
    assert r.status_code == 422 and r.json()["code"] == "invalid_since"


async def test_since_in_a_body_must_be_a_string(api: Api) -> None:
    for since in ([], 5, {"at": "2026-01-01T00:00:00Z"}):
        r = await api.client.post("/v1/dead-letters/redeliver", json={"since": since},
                                  headers=api.auth())
        assert r.status_code == 422, (since, r.text)
        assert r.json()["code"] == "invalid_since" and r.json()["field"] == "since"


async def test_cursor_pagination_walks_every_row_once(api: Api) -> None:
    await _follower(api)
    for i in range(7):
        r = await api.client.post("/v1/manager-orders", headers=api.auth(),
                                  json={**GOOD, "id": f"P-{i}"})
        assert r.status_code == 201
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = (await api.client.get("/v1/manager-orders", params=params,
                                     headers=api.auth())).json()
        seen += [o["id"] for o in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"P-{i}" for i in range(7)]
    fo = (await api.client.get("/v1/follower-orders", params={"limit": 5},
                               headers=api.auth())).json()
    assert len(fo["data"]) == 5 and fo["next_cursor"]
    bad = await api.client.get("/v1/manager-orders", params={"cursor": "!!"}, headers=api.auth())
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_cursor"


async def test_idempotency_key_is_required_and_replays(api: Api) -> None:
    await _follower(api)
    raw = httpx.AsyncClient(transport=api.client._transport, base_url="http://test")
    body = {**GOOD, "id": None}
    del body["id"]  # no order id: only the Idempotency-Key protects against a double submit
    missing = await raw.post("/v1/manager-orders", json=body, headers=api.auth())
    assert missing.status_code == 400 and missing.json()["code"] == "idempotency_key_required"
    h = {**api.auth(), "Idempotency-Key": "k-1"}
    first = await raw.post("/v1/manager-orders", json=body, headers=h)
    again = await raw.post("/v1/manager-orders", json=body, headers=h)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotency-replayed"] == "true"
    assert await _counts(api) == (1, 1)
    other = await raw.post("/v1/manager-orders", json={**body, "qty": 11}, headers=h)
    assert other.status_code == 422 and other.json()["code"] == "idempotency_key_reused"
    assert await _counts(api) == (1, 1)
    await raw.aclose()


async def test_rate_limit_answers_429_with_headers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from vanta.bootstrap import build
    from vanta.config import Settings
    from vanta.entrypoints.api.app import create_app
    c = build(Settings(data_dir=tmp_path, rate_limit_per_minute=60, rate_limit_burst=3))
    await c.migrate()
    app = create_app(c, run_dispatcher=False)
    tok = c.issuer.issue("u", "t", ("vault:read",))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://t") as http:
        codes = [(await http.get("/v1/vaults", headers={"Authorization": f"Bearer {tok}"}))
                 for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert codes[-1].json()["code"] == "rate_limited"
    assert int(codes[-1].headers["retry-after"]) >= 1
    assert codes[0].headers["ratelimit-policy"] == "60;w=60;burst=3"
    await c.close()


async def test_follower_list_is_paginated(api: Api) -> None:
    for _ in range(5):
        await _follower(api)
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        body = (await api.client.get("/v1/vaults/VA/followers", params=params,
                                     headers=api.auth())).json()
        seen += [f["follower_id"] for f in body["data"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 5 and seen == sorted(seen)
