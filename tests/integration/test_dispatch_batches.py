"""Batched delivery: two transactions per batch, an endpoint's share per batch, one failed
send that leaves its neighbours alone, and a consumer that gathers messages into batches.
SQLite in a temp dir (two of them on PostgreSQL as well) and a real verifying receiver on
127.0.0.1."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from tests.integration.test_relay_consumer import World, make_world
from tests.pg import temp_database
from vanta.adapters.bus.inprocess import InProcessBus
from vanta.adapters.db.repositories import OutboxLease
from vanta.adapters.db.tables import delivery_attempts, follower_orders, outbox
from vanta.adapters.webhooks.sender import SendResult
from vanta.application.manager_orders import DISPATCH_TOPIC
from vanta.domain.audit import verify_chain
from vanta.entrypoints.workers.consumer import Consumer
from vanta.entrypoints.workers.relay import Relay, encode, message_id


async def attempts_of(w: World, fo_ids: list[str]) -> dict[str, list[tuple[int, str]]]:
    async with w.c.uow(readonly=True) as uow:
        rows = (await uow.outbox.conn.execute(
            select(delivery_attempts.c.fo_id, delivery_attempts.c.attempt_no,
                   delivery_attempts.c.outcome)
            .where(delivery_attempts.c.fo_id.in_(fo_ids))
            .order_by(delivery_attempts.c.attempt_no))).all()
    out: dict[str, list[tuple[int, str]]] = {f: [] for f in fo_ids}
    for r in rows:
        out[r.fo_id].append((r.attempt_no, r.outcome))
    return out


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[dict[str, str]]:
    """Settings for the batch's database: SQLite (the default), or a throwaway PostgreSQL
    database, where id lists go as one array parameter."""
    if request.param == "sqlite":
        yield {}
        return
    with temp_database(request.getfixturevalue("postgres_url")) as url:
        # PostgreSQL is the production profile: it needs an external master key
        yield {"database_url": url, "master_key": Fernet.generate_key().decode()}


async def test_a_batch_sends_an_endpoint_no_more_than_its_share_and_hands_back_the_rest(
    tmp_path: Path,
) -> None:
    async with make_world(tmp_path, 10, delay=0.05, webhook_per_endpoint_limit=2,
                     dispatcher_concurrency=8) as w:
        d = w.c.dispatcher
        assert (d.config.per_endpoint, d.config.batch) == (2, 16)
        mo_id, fos = await w.order("M-share")

        assert await d.run_once() == 10  # all ten leased in one batch...
        states = await w.states(fos)
        assert Counter(states.values()) == {"ack": 2, "pending": 8}  # ...two sent
        pending = [f for f, s in states.items() if s == "pending"]
        async with w.c.uow(readonly=True) as uow:
            rows = (await uow.outbox.conn.execute(
                select(outbox).where(outbox.c.key.in_(pending)))).all()
        # handed back unused: due at once, no attempt logged, no attempt counted
        assert all(r.locked_until is None and r.done_at is None for r in rows)
        assert all(a == [] for a in (await attempts_of(w, pending)).values())

        while await d.run_once():
            pass
        await w.assert_exactly_once([mo_id], fos)
        assert w.rcv.peak <= 2
        # nobody waited for the endpoint with a timeout running: one attempt each, all ok
        assert all(a == [(1, "ack")] for a in (await attempts_of(w, fos)).values())


class RaisesFor:
    """The real sender, except that sending to one URL raises once (a bug, not an answer)."""

    def __init__(self, inner: Any, url_suffix: str) -> None:
        self.inner, self.suffix, self.raised = inner, url_suffix, 0

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        if url.endswith(self.suffix) and not self.raised:
            self.raised += 1
            raise RuntimeError("boom")
        result: SendResult = await self.inner.send(url, headers, body)
        return result


async def test_a_send_that_raises_leaves_only_its_child_in_flight_until_the_lease_lapses(
    tmp_path: Path, database: dict[str, str],
) -> None:
    async with make_world(tmp_path, 6, dispatcher_lease_seconds=1.0, webhook_per_endpoint_limit=8,
                          webhook_timeout_seconds=0.3, **database) as w:
        d = w.c.dispatcher
        d.sender = RaisesFor(d.sender, "/hooks/f003")
        mo_id, fos = await w.order("M-raise")
        async with w.c.uow(readonly=True) as uow:
            bad = (await uow.outbox.conn.execute(select(follower_orders.c.fo_id).where(
                follower_orders.c.mo_id == mo_id,
                follower_orders.c.follower_id == w.followers[3]))).scalar_one()

        assert await d.run_once() == 6
        states = await w.states(fos)
        assert states[bad] == "sent"
        assert Counter(s for f, s in states.items() if f != bad) == {"ack": 5}
        assert (await attempts_of(w, [bad]))[bad] == [(1, "in_flight")]
        assert await d.run_once() == 0  # still leased: nobody touches it

        await asyncio.sleep(1.1)  # the lease lapses; the next pass sends it again
        assert await d.run_once() == 1
        await w.assert_exactly_once([mo_id], fos)
        assert (await attempts_of(w, [bad]))[bad] == [(1, "lost"), (2, "ack")]
        async with w.c.uow(readonly=True) as uow:
            assert verify_chain(await uow.audit.all()) is None


async def fan_out_through_the_bus(w: World, order_id: str,
                                  **consumer_kw: Any) -> tuple[Consumer, Relay]:
    """One order through relay -> in-process bus -> a consumer (concurrency 8), checked to be
    delivered exactly once; returns the consumer and relay for their counters."""
    bus = InProcessBus()
    con = Consumer(w.c.dispatcher, bus, 8, durable="dispatch", **consumer_kw)
    await con.start()
    relay = Relay(w.c.uow, bus, poll_seconds=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        mo_id, fos = await w.order(order_id)
        await w.assert_exactly_once([mo_id], fos)
    finally:
        stop.set()
        await task
        await con.drain()
        await bus.close()
    return con, relay


async def test_the_consumer_gathers_messages_into_batches(tmp_path: Path) -> None:
    async with make_world(tmp_path, 24) as w:
        con, _ = await fan_out_through_the_bus(w, "M-gather", batch_window_s=0.02)
        assert con.delivered == 24 and con.failed == 0
        # at most 8 a batch, and far fewer batches than messages
        assert 3 <= con.batches <= 12, con.batches


async def test_batches_running_at_once_share_each_endpoints_share(tmp_path: Path) -> None:
    async with make_world(tmp_path, 12, delay=0.05, webhook_per_endpoint_limit=2,
                          dispatcher_concurrency=8) as w:
        d = w.c.dispatcher
        _, fos = await w.order("M-overlap")
        async with w.c.uow() as uow:
            rows = await uow.outbox.claim_due(DISPATCH_TOPIC, d.clock(), 100, d.config.lease)
            await uow.commit()
        leases = [OutboxLease(r.id, r.attempts, r.locked_until) for r in rows]
        (_, first), (_, second) = await asyncio.gather(
            d.deliver_leased(leases[:6], d.config.lease),
            d.deliver_leased(leases[6:], d.config.lease))
        assert w.rcv.peak <= 2  # never more than the share, across both batches
        acked = Counter((await w.states(fos)).values())["ack"]
        assert 2 <= acked <= 4 and acked + len(first.deferred) + len(second.deferred) == 12
        assert d._in_flight == {}  # every counted child was released once answered


async def test_the_consumer_holds_deferred_rows_until_room_frees_up(
    tmp_path: Path, database: dict[str, str],
) -> None:
    async with make_world(tmp_path, 12, delay=0.03, webhook_per_endpoint_limit=2,
                          **database) as w:
        con, relay = await fan_out_through_the_bus(w, "M-hold")
        assert con.deferred > 0 and con.failed == 0
        assert con.delivered == 12 and w.rcv.peak <= 2
        assert relay.published == 12  # each row went out on its first message
        async with w.c.uow() as uow:  # an old lease number: such a message is stale
            assert await uow.outbox.take_many([OutboxLease(1, 0)], w.c.dispatcher.clock(),
                                              w.c.dispatcher.config.lease) == []


async def test_two_copies_of_one_message_send_the_child_once(
    tmp_path: Path, database: dict[str, str],
) -> None:
    """A message redelivered while its first copy is being worked on (the bus did not hear
    the acknowledgement in time) names a lease that taking has already moved: skipped."""
    async with make_world(tmp_path, 8, delay=0.05, **database) as w:
        d = w.c.dispatcher
        mo_id, fos = await w.order("M-copies")
        async with w.c.uow() as uow:
            rows = await uow.outbox.claim_due(DISPATCH_TOPIC, d.clock(), 100, d.config.lease)
            await uow.commit()
        async with w.c.uow() as uow:  # the repository: one lease, one taker
            first = OutboxLease(rows[0].id, rows[0].attempts, rows[0].locked_until)
            assert len(await uow.outbox.take_many([first], d.clock(), d.config.lease)) == 1
            assert await uow.outbox.take_many([first], d.clock(), d.config.lease) == []
            await uow.rollback()
        bus = InProcessBus()
        consumers = [Consumer(d, bus, 4, durable="dispatch") for _ in range(2)]
        for con in consumers:
            await con.start()
        try:
            for r in rows:
                await bus.publish("mirror.dispatch", encode(r), f"{message_id(r)}:a")
            await asyncio.sleep(0.02)  # taken, and their sends (50 ms each) under way
            for r in rows:  # every message again, under an id the bus does not merge
                await bus.publish("mirror.dispatch", encode(r), f"{message_id(r)}:b")
            await w.assert_exactly_once([mo_id], fos)
            await asyncio.sleep(0.2)  # let the later copies finish
        finally:
            for con in consumers:
                await con.drain()
            await bus.close()
        # every copy answered: delivered (a copy in the same batch as its twin shares its one
        # send) or skipped as stale
        assert sum(c.delivered + c.skipped for c in consumers) == 16
