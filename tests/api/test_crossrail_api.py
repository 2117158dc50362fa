"""The cross-rail routes over SQLite: an admin edits a venue's fee model (versioned in the
audit), buffers are set per vault and per Institutional follower, a quote names the cheapest
route, and every bad input answers problem+json with a stable code and changes nothing."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api

HOOK = {"url": "https://follower.example/hook"}
MODEL = {"maker_bps": "10", "taker_bps": "20", "spread_bps": "5", "conversion_bps": "1",
         "min_order_usd": "1", "latency_ms": 100,
         "pairs": ["BTC-USD", "BTC-USDC", "USDC-USD"]}
QUOTE = {"symbol": "BTC", "side": "buy", "qty": "0.1", "price": "40000",
         "usd_balance": "10000"}
ADMIN = ("platform:admin", "vault:read")


async def _follower(api: Api, **extra: Any) -> str:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": HOOK, **extra})
    assert r.status_code == 201, r.text
    return str(r.json()["follower_id"])


def _problem(r: Any, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == code


async def test_admin_replaces_a_fee_model_as_the_next_version(api: Api) -> None:
    before = (await api.client.get("/v1/venues/kraken", headers=api.auth())).json()
    assert before["version"] == 0
    r = await api.client.put("/v1/venues/Kraken", headers=api.auth(scopes=ADMIN), json=MODEL)
    assert r.status_code == 200, r.text
    assert (r.json()["version"], r.json()["taker_bps"]) == (1, "20")
    r = await api.client.put("/v1/venues/kraken", headers=api.auth(scopes=ADMIN),
                             json={**MODEL, "taker_bps": 15})
    assert r.json()["version"] == 2
    listed = (await api.client.get("/v1/venues", headers=api.auth())).json()["data"]
    assert [(v["venue"], v["version"]) for v in listed] == [
        ("binance", 0), ("coinbase", 0), ("kraken", 2), ("paper", 0)]
    async with api.container.uow(readonly=True) as uow:
        events = [e for e in await uow.audit.all() if e.entity == "venue_fee_model"]
    assert [e.payload["version"] for e in events] == [1, 2]
    # a token without platform:admin may read but not edit
    r = await api.client.put("/v1/venues/kraken", headers=api.auth(scopes=("vault:read",)),
                             json=MODEL)
    assert r.status_code == 403


async def test_bad_fee_models_are_refused_and_change_nothing(api: Api) -> None:
    h = api.auth(scopes=ADMIN)
    _problem(await api.client.put("/v1/venues/mtgox", headers=h, json=MODEL), 404,
             "unknown_venue")
    _problem(await api.client.get("/v1/venues/mtgox", headers=h), 404, "unknown_venue")
    for change in ({"taker_bps": "-1"}, {"maker_bps": 10001}, {"pairs": ["BTCUSD"]},
                   {"latency_ms": -1}, {"pairs": []}):
        _problem(await api.client.put("/v1/venues/kraken", headers=h,
                                      json={**MODEL, **change}), 422, "invalid_fee_model")
    _problem(await api.client.put("/v1/venues/kraken", headers=h, json={**MODEL, "x": 1}),
             422, "unknown_field")
    assert (await api.client.get("/v1/venues/kraken", headers=h)).json()["version"] == 0


async def test_buffers_per_vault_and_per_institutional_follower(api: Api) -> None:
    core = await _follower(api)
    inst = await _follower(api, plan="institutional")
    r = await api.client.put("/v1/vaults/VA/stablecoin-buffer", headers=api.auth(),
                             json={"amount": "750.25"})
    assert r.status_code == 200 and r.json()["amount"] == "750.25"
    r = await api.client.put(f"/v1/followers/{inst}/stablecoin-buffer", headers=api.auth(),
                             json={"amount": 3000})
    assert r.status_code == 200, r.text
    got = (await api.client.get(f"/v1/followers/{core}/stablecoin-buffer",
                                headers=api.auth())).json()
    assert (got["amount"], got["source"]) == ("750.25", "vault")
    got = (await api.client.get(f"/v1/followers/{inst}/stablecoin-buffer",
                                headers=api.auth())).json()
    assert (got["amount"], got["source"]) == ("3000", "follower")
    _problem(await api.client.put(f"/v1/followers/{core}/stablecoin-buffer",
                                  headers=api.auth(), json={"amount": 1}), 422,
             "plan_lacks_feature")
    for bad in ("-1", -0.5, "abc", "0.0000001"):
        _problem(await api.client.put("/v1/vaults/VA/stablecoin-buffer", headers=api.auth(),
                                      json={"amount": bad}), 422, "invalid_buffer")
    got = (await api.client.get("/v1/vaults/VA/stablecoin-buffer", headers=api.auth())).json()
    assert got["amount"] == "750.25"
    _problem(await api.client.put("/v1/vaults/VB/stablecoin-buffer", headers=api.auth(),
                                  json={"amount": 1}), 404, "vault_not_found")


async def test_quote_names_the_cheapest_route_and_refuses_bad_input(api: Api) -> None:
    fid = await _follower(api)
    r = await api.client.post(f"/v1/followers/{fid}/route-quote", headers=api.auth(),
                              json={**QUOTE, "venues": ["kraken", "binance"]})
    assert r.status_code == 200, r.text
    q = r.json()
    # binance (10 bp taker + 3 bp spread) beats kraken (40 + 4) on the direct pair
    assert (q["chosen"]["venue"], q["chosen"]["kind"], q["chosen"]["cost_usd"]) == (
        "binance", "direct", "5.2")
    assert {(x["venue"], x["kind"]) for x in q["rejected"]} == {
        ("binance", "via_usdc"), ("kraken", "direct"), ("kraken", "via_usdc")}
    url = f"/v1/followers/{fid}/route-quote"
    for change, code in (({"symbol": "DOGE"}, "unknown_pair"),
                         ({"venues": ["mtgox"]}, "unknown_venue"),
                         ({"qty": "-1"}, "invalid_number"),
                         ({"side": "hold"}, "invalid_side"),
                         ({"latency_budget_ms": -1}, "invalid_latency_budget")):
        _problem(await api.client.post(url, headers=api.auth(), json={**QUOTE, **change}),
                 422, code)
    _problem(await api.client.post(url, headers=api.auth("tnt_b"), json=QUOTE), 404,
             "follower_not_found")


async def _crypto_order(api: Api, coid: str) -> list[dict[str, Any]]:
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": coid, "vault_id": "VA", "symbol": "BTC-USD", "side": "buy", "qty": "1",
        "ref_price": "40000"})
    assert r.status_code == 201, r.text
    kids = await api.client.get(r.json()["links"]["children"], headers=api.auth())
    return list(kids.json()["data"])


async def test_a_crypto_order_plans_legs_with_its_child(api: Api) -> None:
    r = await api.client.put("/v1/instruments/default/BTC-USD",
                             headers=api.auth(scopes=("platform:admin",)),
                             json={"lot_step": "0.00001", "min_qty": "0.00001"})
    assert r.status_code == 200, r.text
    usdc_only = {**MODEL, "taker_bps": "0", "spread_bps": "0", "conversion_bps": "0",
                 "pairs": ["BTC-USDC", "USDC-USD"]}
    r = await api.client.put("/v1/venues/paper", headers=api.auth(scopes=ADMIN),
                             json=usdc_only)
    assert r.status_code == 200, r.text
    await api.client.put("/v1/vaults/VA/stablecoin-buffer", headers=api.auth(),
                         json={"amount": "1000"})
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "scale": "0.5", "bridged": {"broker": "paper", "credentials": {"cash": "50000"}}})
    assert r.status_code == 201, r.text
    [child] = await _crypto_order(api, "c-1")
    legs = (await api.client.get(f"/v1/follower-orders/{child['fo_id']}/legs",
                                 headers=api.auth())).json()["data"]
    assert [(g["kind"], g["pair"], g["amount"], g["state"], g["after"]) for g in legs] == [
        ("convert", "USDC-USD", "21000", "planned", None),
        ("trade", "BTC-USDC", "0.5", "waiting", 0)]
    # too slow for the latency budget: the next order's child is skipped, nothing queued
    await api.client.put("/v1/venues/paper", headers=api.auth(scopes=ADMIN),
                         json={**usdc_only, "latency_ms": 3_000_000})
    async with api.container.uow(readonly=True) as uow:
        queued = await uow.outbox.pending_count("mirror.dispatch")
    [skipped] = await _crypto_order(api, "c-2")
    assert (skipped["state"], skipped["skip_reason"]) == ("skipped", "no_feasible_route")
    async with api.container.uow(readonly=True) as uow:
        assert await uow.outbox.pending_count("mirror.dispatch") == queued
    assert (await api.client.get(f"/v1/follower-orders/{skipped['fo_id']}/legs",
                                 headers=api.auth())).json()["data"] == []
