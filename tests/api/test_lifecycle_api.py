"""POST/PATCH /v1/vaults and DELETE /v1/followers/{id} over HTTP: scopes, plan limits,
problem+json codes, idempotency keys, and what an unfollow leaves behind."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api
from vanta.application.principal import ROLE_SCOPES

OPS = tuple(sorted(ROLE_SCOPES["ops"]))


async def _follower(api: Api, **kw: Any) -> str:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": {"url": "https://f.example/h"}, "scale": "1",
                                    **kw})
    assert r.status_code == 201, r.text
    return str(r.json()["follower_id"])


async def _order(api: Api, oid: str, qty: int = 10) -> None:
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": qty,
        "ref_price": "100"})
    assert r.status_code == 201, r.text


async def test_an_owner_creates_a_vault_and_it_is_listed(api: Api) -> None:
    r = await api.client.post("/v1/vaults", headers=api.auth(),
                              json={"vault_id": "V2", "label": "Second", "public": True})
    assert r.status_code == 201, r.text
    assert r.json()["vault_id"] == "V2" and r.json()["public"] is True
    listed = (await api.client.get("/v1/vaults", headers=api.auth())).json()["data"]
    assert {v["vault_id"] for v in listed} == {"VA", "V2"}


async def test_vault_creation_is_the_owners_alone(api: Api) -> None:
    r = await api.client.post("/v1/vaults", headers=api.auth(scopes=OPS),
                              json={"label": "x"})
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "insufficient_scope"


async def test_the_plans_vault_limit_answers_a_problem(api: Api) -> None:
    r = await api.client.post("/v1/vaults", headers=api.auth("tnt_b"), json={"label": "x"})
    assert r.status_code == 403 and r.json()["code"] == "vault_limit_reached"
    listed = (await api.client.get("/v1/vaults", headers=api.auth("tnt_b"))).json()["data"]
    assert [v["vault_id"] for v in listed] == ["VB"]


async def test_a_vault_body_is_validated(api: Api) -> None:
    for body, code in (({"personas": ["Zeus"]}, "unknown_persona"),
                       ({"nope": 1}, "unknown_field"),
                       ({"risk_profile": {"max_drawdown_pct": "0"}}, "invalid_risk_profile"),
                       ({"vault_id": "has space"}, "invalid_vault_id")):
        r = await api.client.post("/v1/vaults", headers=api.auth(), json=body)
        assert r.status_code == 422 and r.json()["code"] == code, (body, r.text)


async def test_a_vault_id_already_used_is_a_conflict(api: Api) -> None:
    r = await api.client.post("/v1/vaults", headers=api.auth(), json={"vault_id": "VA"})
    assert r.status_code == 409 and r.json()["code"] == "vault_exists"


async def test_patch_vault_changes_settings_and_audits_them(api: Api) -> None:
    r = await api.client.patch("/v1/vaults/VA", headers=api.auth(),
                               json={"label": "Renamed", "personas": ["Apollo", "Ares"],
                                     "risk_profile": {"style": "conservative"}})
    assert r.status_code == 200, r.text
    got = (await api.client.get("/v1/vaults/VA", headers=api.auth())).json()
    assert got["label"] == "Renamed" and got["personas"] == ["Apollo", "Ares"]
    assert got["risk_profile"] == {"max_drawdown_pct": 12, "style": "conservative"}
    async with api.container.uow() as uow:
        events = [e for e in await uow.audit.for_entity("tnt_a", "VA")
                  if e.action == "updated"]
    assert events[-1].payload["before"]["label"] == "A"
    assert events[-1].payload["after"]["label"] == "Renamed"


async def test_patch_of_another_tenants_vault_is_not_found(api: Api) -> None:
    r = await api.client.patch("/v1/vaults/VB", headers=api.auth(), json={"public": True})
    assert r.status_code == 404 and r.json()["code"] == "vault_not_found"


async def test_an_empty_vault_patch_is_refused(api: Api) -> None:
    r = await api.client.patch("/v1/vaults/VA", headers=api.auth(), json={})
    assert r.status_code == 422 and r.json()["code"] == "empty_patch"


async def test_delete_follower_needs_a_positions_choice(api: Api) -> None:
    f = await _follower(api)
    r = await api.client.delete(f"/v1/followers/{f}", headers=api.auth())
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    r = await api.client.delete(f"/v1/followers/{f}?positions=sell", headers=api.auth())
    assert r.status_code == 422
    got = (await api.client.get(f"/v1/followers/{f}", headers=api.auth())).json()
    assert got["paused_reason"] is None  # nothing happened


async def test_delete_needs_an_idempotency_key(api: Api) -> None:
    f = await _follower(api)
    r = await api.client.request("DELETE", f"/v1/followers/{f}?positions=keep",
                                 headers={**api.auth(), "Idempotency-Key": ""})
    assert r.status_code in (400, 422), r.text


async def test_unfollow_with_close_sells_the_position_and_stops_new_children(api: Api
                                                                           ) -> None:
    f = await _follower(api)
    stays = await _follower(api)
    await _order(api, "b1")
    r = await api.client.delete(f"/v1/followers/{f}?positions=close", headers=api.auth())
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["unfollowed"] is True and out["already_unfollowed"] is False
    assert [(x["symbol"], x["side"], x["qty"]) for x in out["exit_orders"]] == \
        [("AAPL", "sell", "10")]
    await _order(api, "b2")
    kids = (await api.client.get(f"/v1/follower-orders?follower_id={f}",
                                 headers=api.auth())).json()["data"]
    assert len(kids) == 2  # the buy and the exit; nothing from b2
    others = (await api.client.get(f"/v1/follower-orders?follower_id={stays}",
                                   headers=api.auth())).json()["data"]
    assert len(others) == 2  # b1 and b2
    again = await api.client.delete(f"/v1/followers/{f}?positions=close",
                                    headers=api.auth())
    assert again.status_code == 200 and again.json()["already_unfollowed"] is True
    assert again.json()["exit_orders"] == []
    patch = await api.client.patch(f"/v1/followers/{f}", headers=api.auth(),
                                   json={"label": "back"})
    assert patch.status_code == 409 and patch.json()["code"] == "follower_unfollowed"


async def test_unfollow_needs_follower_manage_and_hides_other_tenants(api: Api) -> None:
    f = await _follower(api)
    r = await api.client.delete(f"/v1/followers/{f}?positions=keep",
                                headers=api.auth(scopes=("vault:read",)))
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await api.client.delete(f"/v1/followers/{f}?positions=keep",
                                headers=api.auth("tnt_b"))
    assert r.status_code == 404 and r.json()["code"] == "follower_not_found"
