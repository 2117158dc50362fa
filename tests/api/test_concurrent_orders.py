"""Many clients posting orders to one vault at once (SQLite): every order is accepted once,
nothing answers 5xx, and a write that cannot get its turn answers 503, not 500."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.api.conftest import Api
from vanta.adapters.db import engine as db_engine
from vanta.adapters.db.tables import follower_orders, manager_orders
from vanta.adapters.webhooks.sender import SendResult
from vanta.domain.audit import verify_chain

HOOK = {"url": "https://follower.example/hook"}
CLIENTS, ORDERS_EACH, FOLLOWERS = 16, 3, 5


class CountingSender:
    def __init__(self) -> None:
        self.ids: list[str] = []

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        self.ids.append(headers["webhook-id"])
        await asyncio.sleep(0)  # let the posting clients interleave with the deliveries
        return SendResult(200, 1, "ok", None)


def order_body(oid: str) -> dict[str, Any]:
    return {"id": oid, "vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": 10,
            "ref_price": 100}


async def add_followers(api: Api, n: int) -> None:
    for _ in range(n):
        r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                                  json={"webhook": HOOK})
        assert r.status_code == 201, r.text


async def count(api: Api, stmt: Any) -> int:
    async with api.container.engine.connect() as conn:
        return int((await conn.execute(stmt)).scalar_one())


async def test_concurrent_clients_each_order_accepted_once_and_delivered_once(
        api: Api) -> None:
    await add_followers(api, FOLLOWERS)
    sender = CountingSender()
    d = api.container.dispatcher
    d.sender = sender
    stop = asyncio.Event()
    running = asyncio.create_task(d.run_forever(0.01, stop))  # writes alongside the API's
    auth = api.auth()

    async def client(k: int) -> list[tuple[int, str]]:
        out = []
        for i in range(ORDERS_EACH):
            r = await api.client.post("/v1/manager-orders", headers=auth,
                                      json=order_body(f"c{k}-{i}"))
            out.append((r.status_code, r.json().get("mo_id", r.text)))
        return out

    try:
        answers = [a for part in await asyncio.gather(*(client(k) for k in range(CLIENTS)))
                   for a in part]
        statuses = Counter(s for s, _ in answers)
        assert statuses == {201: CLIENTS * ORDERS_EACH}, answers
        total = CLIENTS * ORDERS_EACH * FOLLOWERS
        deadline = asyncio.get_running_loop().time() + 60  # a bounded wait, for slow CI
        while len(sender.ids) < total and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await running
    assert len({mo for _, mo in answers}) == CLIENTS * ORDERS_EACH
    assert await count(api, select(func.count()).select_from(manager_orders)) == \
        CLIENTS * ORDERS_EACH
    pairs = select(func.count()).select_from(
        select(follower_orders.c.mo_id, follower_orders.c.follower_id).distinct().subquery())
    assert await count(api, select(func.count()).select_from(follower_orders)) == total
    assert await count(api, pairs) == total  # one child per order and follower
    assert len(sender.ids) == total and len(set(sender.ids)) == total  # none sent twice
    async with api.container.uow(readonly=True) as uow:
        assert verify_chain(await uow.audit.all()) is None  # the chain stayed whole


async def test_a_write_that_gets_no_turn_answers_503_and_writes_nothing(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    await add_followers(api, 2)
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_S", 0.2)
    headers = {**api.auth(), "Idempotency-Key": "busy-1"}
    lock = db_engine.writer_lock(api.container.engine)
    assert lock is not None
    async with lock:  # another writer holds the database longer than the busy timeout
        r = await api.client.post("/v1/manager-orders", headers=headers,
                                  json=order_body("busy"))
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "1"
    assert r.json()["code"] == "busy"
    assert await count(api, select(func.count()).select_from(manager_orders)) == 0
    # the key was not kept for a 5xx: the same request, retried, runs and is accepted once
    again = await api.client.post("/v1/manager-orders", headers=headers,
                                  json=order_body("busy"))
    assert again.status_code == 201, again.text
    assert await count(api, select(func.count()).select_from(follower_orders)) == 2
