"""What the delivery path writes to the journal and how an order's trace travels, over the
fakes: one dispatch line per attempt (ids, attempt number, status, latency, error, next retry
time), one trade line per child state change, one flush per batch; with a tracer installed,
the outbox row carries the order's ``traceparent`` and the follower receives a span of the
same trace; without one, nothing is added."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.application.conftest import World
from tests.fakes.journal import RecordingJournal
from tests.fakes.sender import Answer
from tests.fakes.tracer import RecordingTracer
from vanta.application import observability, tracing
from vanta.application.dead_letters import redeliver
from vanta.application.ports.tracer import NOOP_TRACER, trace_id_of


@pytest.fixture
def journal(world: World) -> Iterator[RecordingJournal]:
    j = RecordingJournal()
    world.dispatcher.journal = j
    observability.install(j)
    yield j
    observability.install(observability.NO_JOURNAL)


@pytest.fixture
def tracer(world: World) -> Iterator[RecordingTracer]:
    t = RecordingTracer()
    world.dispatcher.tracer = t
    tracing.install(t)
    yield t
    tracing.install(NOOP_TRACER)


async def test_each_attempt_is_one_dispatch_line_and_each_move_one_trade_line(
        world: World, journal: RecordingJournal) -> None:
    fid = await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    world.sender.script("https://hooks.example/0", Answer(503, latency_ms=7), Answer())
    first = world.clock()
    await world.drain()
    assert journal.unflushed == 0  # the batch ended with a flush
    world.clock.advance(1)
    await world.drain()
    one, two = journal.dispatch
    ids = {"mo_id": sub.order.mo_id, "fo_id": fo, "follower_id": fid, "vault_id": "VA"}
    assert {k: one[k] for k in ids} == ids and {k: two[k] for k in ids} == ids
    assert (one["attempt"], one["outcome"], one["status"], one["latency_ms"], one["error"]) \
        == (1, "retry", 503, 7, "HTTP 503")
    assert one["next_retry_at"] == (first + timedelta(seconds=1)).isoformat()
    assert (two["attempt"], two["outcome"], two["status"], two["next_retry_at"]) \
        == (2, "ack", 200, None)
    assert journal.moves(fo) == [(None, "pending"), ("pending", "sent"), ("sent", "retry"),
                                 ("retry", "sent"), ("sent", "ack")]
    assert journal.flushes >= 2


async def test_a_child_withdrawn_by_the_kill_switch_is_in_the_trade_log(
        world: World, journal: RecordingJournal) -> None:
    fid = await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    async with world.uow() as u:
        await u.followers.update("tnt_a", fid, kill_switch=True)
        await u.commit()
    await world.drain()
    assert journal.moves(fo) == [(None, "pending"), ("pending", "cancelled")]
    assert journal.dispatch == []  # no attempt was made


async def test_the_trace_runs_from_ingest_through_the_outbox_to_the_follower(
        world: World, tracer: RecordingTracer) -> None:
    await world.follower()
    with tracer.span("POST /v1/manager-orders"):
        sub = await world.submit()
    assert sub.expansion is not None
    [api] = tracer.named("POST /v1/manager-orders")
    async with world.uow() as u:
        [row] = await u.outbox.claim_due("mirror.dispatch", world.clock(), 10,
                                         timedelta(seconds=0))
    stored = row.payload["traceparent"]
    assert trace_id_of(stored) == api.trace_id
    assert [s.name for s in api.children] == ["mirror.ingest"]
    world.clock.advance(1)  # the claim above leased nothing for long
    await world.drain()
    [deliver] = tracer.named("webhook.deliver")
    assert deliver.remote_parent == stored and deliver.trace_id == api.trace_id
    [req] = world.sender.requests
    assert trace_id_of(req.headers["traceparent"]) == api.trace_id
    assert req.headers["traceparent"].split("-")[2] == deliver.span_id


async def test_without_a_tracer_nothing_is_added(world: World) -> None:
    await world.follower()
    await world.submit()
    async with world.uow() as u:
        [row] = await u.outbox.claim_due("mirror.dispatch", world.clock(), 10,
                                         timedelta(seconds=0))
    assert "traceparent" not in row.payload
    world.clock.advance(1)
    await world.drain()
    [req] = world.sender.requests
    assert "traceparent" not in req.headers


async def test_a_redelivered_dead_letter_is_in_the_trade_log(
        world: World, journal: RecordingJournal) -> None:
    await world.follower()
    sub = await world.submit()
    assert sub.expansion is not None
    [fo] = [c.fo_id for c in sub.expansion.children]
    world.sender.script("https://hooks.example/0", Answer(500), Answer(500), Answer(500),
                        Answer())
    for step in (0, 1, 5):
        world.clock.advance(step)
        await world.drain()
    assert journal.moves(fo)[-1] == ("sent", "dlq")
    done = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=[fo], since=None,
                           actor="ops", clock=world.clock)
    assert done.requeued == [fo]
    assert journal.moves(fo)[-1] == ("dlq", "pending")
    await world.drain()
    assert journal.moves(fo)[-2:] == [("pending", "sent"), ("sent", "ack")]
