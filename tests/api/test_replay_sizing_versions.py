"""Replay sizes an order by the rules it was sized with (the snapshot's sizing version)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from tests.api.conftest import Api
from vanta.adapters.db.tables import follower_orders, manager_orders

HOOK = {"url": "https://follower.example/hook"}


async def _replay(api: Api, mo_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/manager-orders/{mo_id}/replay", headers=api.auth())
    assert r.status_code == 200, r.text
    return r.json()


async def test_orders_sized_before_the_exact_rules_still_replay_as_matching(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": HOOK, "scale_mode": "nav_ratio"})
    assert r.status_code == 201, r.text
    fid = r.json()["follower_id"]
    r = await api.client.post(f"/v1/followers/{fid}/nav", headers=api.auth(), json={"nav": 1000})
    assert r.status_code in (200, 201), r.text
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": "M-1", "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 30,
        "ref_price": 100, "manager_nav": 3000})
    assert r.status_code in (200, 201), r.text
    body = r.json()
    mo_id = body["mo_id"]
    (child,) = (await api.client.get(body["links"]["children"],
                                     headers=api.auth())).json()["data"]
    assert child["qty"] == "10", "a third of 30 is 10 (version 1 gave 9)"

    engine = api.container.engine
    async with engine.connect() as conn:
        snap = (await conn.execute(select(manager_orders.c.snapshot).where(
            manager_orders.c.mo_id == mo_id))).scalar_one()
    assert snap["sizing_version"] == 2
    assert (await _replay(api, mo_id))["matches"]

    # The same order as it was stored before versions existed: 9 shares, no version recorded.
    async with engine.begin() as conn:
        await conn.execute(update(follower_orders).where(
            follower_orders.c.fo_id == child["fo_id"]).values(qty=Decimal(9)))
    mismatch = await _replay(api, mo_id)
    assert not mismatch["matches"], "version 2 rules do not reproduce a version 1 child"
    assert mismatch["differences"][0]["replayed_qty"] == "10"
    old = {k: v for k, v in snap.items() if k != "sizing_version"}
    async with engine.begin() as conn:
        await conn.execute(update(manager_orders).where(
            manager_orders.c.mo_id == mo_id).values(snapshot=old))
    replayed = await _replay(api, mo_id)
    assert replayed["matches"], replayed
