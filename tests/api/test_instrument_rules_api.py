"""The API's side of instrument rules: every order says where its rules came from, and with
VANTA_REQUIRE_INSTRUMENT_RULES an unknown symbol is refused with 422 unknown_instrument."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api


async def _post(api: Api, oid: str, symbol: str) -> Any:
    return await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": oid, "vault_id": "VA", "symbol": symbol, "side": "buy", "qty": 10,
        "ref_price": 100})


async def _rule(api: Api, symbol: str) -> None:
    r = await api.client.put(f"/v1/instruments/default/{symbol}",
                             headers=api.auth(scopes=("platform:admin",)),
                             json={"lot_step": 1, "min_qty": 1})
    assert r.status_code == 200, r.text


async def test_orders_say_where_their_instrument_rules_came_from(api: Api) -> None:
    await _rule(api, "MSFT")
    unknown = await _post(api, "o-1", "AAPL")
    known = await _post(api, "o-2", "MSFT")
    assert (unknown.status_code, known.status_code) == (201, 201)
    assert unknown.json()["instrument_source"] == "default"
    assert known.json()["instrument_source"] == "catalogue"
    got = await api.client.get(f"/v1/manager-orders/{unknown.json()['mo_id']}",
                               headers=api.auth())
    assert got.json()["instrument_source"] == "default"


async def test_required_rules_refuse_an_unknown_symbol_with_422(api: Api) -> None:
    api.container.settings = api.container.settings.model_copy(
        update={"require_instrument_rules": True})
    await _rule(api, "MSFT")
    r = await _post(api, "o-1", "AAPL")
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "unknown_instrument"
    assert (await _post(api, "o-2", "MSFT")).status_code == 201
    listed = (await api.client.get("/v1/manager-orders", headers=api.auth())).json()["data"]
    assert [o["id"] for o in listed] == ["o-2"]
