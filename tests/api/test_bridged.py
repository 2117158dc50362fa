"""Bridged followers through the paper broker: one order per child, fills by trade id."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import select, update

from tests.api.conftest import Api
from vanta.adapters.db.tables import fills, follower_orders, outbox
from vanta.application.bridged import confirm_fills
from vanta.application.ports.records_catalog import FollowerRecord


async def bridged(api: Api, **kw: Any) -> dict[str, Any]:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "bridged": {"broker": "paper", "credentials": {"cash": "1000000"}}, **kw})
    assert r.status_code == 201, r.text
    return r.json()


async def order(api: Api, oid: str, **kw: Any) -> dict[str, Any]:
    r = await api.client.post("/v1/manager-orders", headers=api.auth(), json={
        "id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 40,
        "ref_price": 190, **kw})
    assert r.status_code == 201, r.text
    out = r.json()
    kids = await api.client.get(out["links"]["children"], headers=api.auth())
    return {**out, "children": kids.json()["data"]}


async def settle(api: Api, fo_id: str, timeout: float = 8) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    d = api.container.dispatcher
    while time.monotonic() < deadline:
        await d.run_once()
        await confirm_fills(api.container.uow, d.brokers)  # type: ignore[arg-type]
        rows = (await api.client.get("/v1/follower-orders", headers=api.auth())).json()["data"]
        child = next(r for r in rows if r["fo_id"] == fo_id)
        if child["state"] in ("confirmed", "failed", "dlq"):
            return child
        await asyncio.sleep(0.1)
    raise TimeoutError(child)


def gateway(api: Api, follower_id: str) -> Any:
    brokers = api.container.dispatcher.brokers
    assert brokers is not None
    return brokers._gateways[follower_id]


async def test_bridged_child_is_placed_once_and_confirmed_by_fills(api: Api) -> None:
    f = await bridged(api, scale="0.5")
    assert f["bridged"] == {"broker": "paper"} and f["webhook"] is None
    fo = (await order(api, "M-1"))["children"][0]["fo_id"]
    child = await settle(api, fo)
    assert child["state"] == "confirmed" and child["filled_qty"] == "20"
    assert child["broker_order_ref"]
    paper = gateway(api, f["follower_id"])
    assert paper.order_count(fo) == 1
    assert (await paper.positions())["AAPL"] == 20
    async with api.container.engine.connect() as conn:
        rows = (await conn.execute(select(fills).where(fills.c.fo_id == fo))).all()
    assert sum(r.qty for r in rows) == 20
    # a second report of the same fills changes nothing
    async with api.container.engine.begin() as conn:
        await conn.execute(update(follower_orders).where(follower_orders.c.fo_id == fo)
                           .values(state="ack"))
    await confirm_fills(api.container.uow, api.container.dispatcher.brokers)  # type: ignore[arg-type]
    async with api.container.engine.connect() as conn:
        again = (await conn.execute(select(fills).where(fills.c.fo_id == fo))).all()
    assert len(again) == len(rows)


async def test_a_resent_child_never_places_a_second_order(api: Api) -> None:
    f = await bridged(api)
    fo = (await order(api, "M-1"))["children"][0]["fo_id"]
    await api.container.dispatcher.run_once()
    # simulate a worker that died after the broker acted: the child is due again
    async with api.container.engine.begin() as conn:
        await conn.execute(update(follower_orders).where(follower_orders.c.fo_id == fo)
                           .values(state="sent"))
        await conn.execute(update(outbox).values(done_at=None, locked_until=None))
    await settle(api, fo)
    assert gateway(api, f["follower_id"]).order_count(fo) == 1


async def test_broker_outage_retries_then_dead_letters(api: Api) -> None:
    api.container.dispatcher.config.retry_schedule = (0.01, 0.01)
    f = await bridged(api)
    fo = (await order(api, "M-1"))["children"][0]["fo_id"]
    # build the gateway, then take it down
    api.container.dispatcher.brokers.for_follower(  # type: ignore[union-attr]
        await _stored(api, f))
    gateway(api, f["follower_id"]).set_outage("503 Service Unavailable")
    child = await settle(api, fo)
    assert child["state"] == "dlq" and "broker unavailable" in child["last_error"]
    attempts = (await api.client.get(f"/v1/follower-orders/{fo}/attempts",
                                     headers=api.auth())).json()["data"]
    assert [a["outcome"] for a in attempts] == ["retry", "retry", "dlq"]


async def test_broker_rejection_is_terminal(api: Api) -> None:
    f = await bridged(api)
    fo = (await order(api, "M-1", qty=100_000))["children"][0]["fo_id"]  # beyond buying power
    child = await settle(api, fo)
    assert child["state"] == "failed" and child["last_error"].startswith("broker rejected")
    assert gateway(api, f["follower_id"]).order_count(fo) == 0


async def test_broker_credentials_never_leave_the_secret_store(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "bridged": {"broker": "alpaca", "credentials": {"key_id": "AK123",
                                                        "secret_key": "very-secret"}}})
    assert r.status_code == 201 and "very-secret" not in r.text
    async with api.container.engine.connect() as conn:
        from vanta.adapters.db.tables import followers
        row = (await conn.execute(select(followers.c.bridged_brokers).where(
            followers.c.follower_id == r.json()["follower_id"]))).scalar_one()
    assert row["broker"] == "alpaca" and row["ref"].startswith("local:")
    assert "very-secret" not in str(row)
    bad = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "bridged": {"broker": "alpaca", "credentials": {"key_id": "x"}}})
    assert bad.status_code == 422 and bad.json()["code"] == "invalid_bridge"


async def _stored(api: Api, f: dict[str, Any]) -> FollowerRecord:
    async with api.container.uow() as uow:
        row = await uow.followers.get("tnt_a", f["follower_id"])
    assert row is not None and row.bridged_brokers is not None
    return row


async def test_an_order_the_venue_forgot_fails_loudly_instead_of_stopping_the_confirmer(
        api: Api) -> None:
    f = await bridged(api)
    fo = (await order(api, "M-1"))["children"][0]["fo_id"]
    await api.container.dispatcher.run_once()
    # a dispatcher restart with the in-process simulator: a fresh venue that never saw it
    api.container.dispatcher.brokers._gateways.pop(f["follower_id"])  # type: ignore[union-attr]
    await confirm_fills(api.container.uow, api.container.dispatcher.brokers)  # type: ignore[arg-type]
    rows = (await api.client.get("/v1/follower-orders", headers=api.auth())).json()["data"]
    child = next(r for r in rows if r["fo_id"] == fo)
    assert child["state"] == "failed" and "no record" in child["last_error"]


async def test_broker_urls_must_be_plain_http(api: Api) -> None:
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "bridged": {"broker": "paper", "credentials": {"url": "file:///etc/passwd"}}})
    assert r.status_code == 422 and r.json()["field"] == "bridged.credentials.url"
