"""The bus port's contract, run on every implementation: the in-process bus (which is also the
fake, ``tests/fakes/bus.py``: a recording ``InProcessBus``) and NATS JetStream (the machine's
server at VANTA_TEST_NATS_URL, skipped with the reason when it is not reachable, a failure with
CI=true; each test gets its own stream and subjects and deletes them afterwards)."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest

from tests.conftest import require_service
from tests.fakes.bus import RecordingBus
from vanta.adapters.bus.inprocess import InProcessBus, subject_matches
from vanta.application.ports.bus import Bus, BusMessage, Subscription

NATS_URL = os.environ.get("VANTA_TEST_NATS_URL", "nats://127.0.0.1:4222")
ACK_WAIT = 1.0


@dataclass
class Harness:
    """Makes buses that share one stream (so a second "worker" can take over a durable)."""

    kind: str
    subject: str  # a subject of this test's own namespace
    make: Callable[[], Awaitable[Bus]]
    buses: list[Bus] = field(default_factory=list)

    async def bus(self) -> Bus:
        b = await self.make()
        self.buses.append(b)
        return b


@pytest.fixture(params=["inprocess", "nats"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    prefix = f"vt{uuid.uuid4().hex[:10]}"
    if request.param == "inprocess":
        shared = RecordingBus(ack_wait_s=ACK_WAIT, max_deliver=5, error_nak_delay_s=0.1)

        async def make_inproc() -> Bus:
            return shared

        h = Harness("inprocess", f"{prefix}.work", make_inproc)
        yield h
        await shared.close()
        return

    url = require_service("NATS", NATS_URL)
    from vanta.adapters.bus.nats_jetstream import JetStreamConfig, NatsJetStreamBus
    cfg = JetStreamConfig(url=url, stream=prefix.upper(), subjects=(f"{prefix}.>",),
                          ack_wait_s=ACK_WAIT, backoff_s=(ACK_WAIT, ACK_WAIT), max_deliver=5,
                          error_nak_delay_s=0.1, fetch_timeout_s=0.5, reconnect_min_s=0.1,
                          reconnect_max_s=0.5)

    async def make_nats() -> Bus:
        return await NatsJetStreamBus.connect(cfg)

    h = Harness("nats", f"{prefix}.work", make_nats)
    try:
        yield h
    finally:
        for b in h.buses:
            await b.close()
        admin = await NatsJetStreamBus.connect(cfg)
        await admin.delete_stream()
        await admin.close()


class Recorder:
    def __init__(self, behaviour: Callable[[BusMessage], Awaitable[None]] | None = None) -> None:
        self.seen: list[tuple[bytes, int]] = []
        self.changed = asyncio.Event()
        self._behaviour = behaviour

    async def __call__(self, msg: BusMessage) -> None:
        self.seen.append((msg.data, msg.num_delivered))
        self.changed.set()
        if self._behaviour is None:
            await msg.ack()
        else:
            await self._behaviour(msg)

    async def wait_for(self, n: int, timeout: float = 10.0) -> None:
        async def loop() -> None:
            while len(self.seen) < n:
                self.changed.clear()
                await self.changed.wait()
        await asyncio.wait_for(loop(), timeout)


async def test_publish_consume_ack(harness: Harness) -> None:
    bus = await harness.bus()
    for i in range(5):
        assert await bus.publish(harness.subject, f"m{i}".encode(), f"id-{i}") is True
    rec = Recorder()
    sub = await bus.subscribe(harness.subject, "work", rec, concurrency=3)
    await rec.wait_for(5)
    await asyncio.sleep(ACK_WAIT * 1.5)  # acked messages never come back
    await sub.drain()
    assert sorted(rec.seen) == [(f"m{i}".encode(), 1) for i in range(5)]
    await _assert_nothing_pending(harness, bus)


async def test_redelivery_after_nak(harness: Harness) -> None:
    bus = await harness.bus()

    async def nak_first(msg: BusMessage) -> None:
        if msg.num_delivered == 1:
            await msg.nak(0.2)
        else:
            await msg.ack()

    rec = Recorder(nak_first)
    sub = await bus.subscribe(harness.subject, "work", rec)
    await bus.publish(harness.subject, b"x", "x-1")
    await rec.wait_for(2)
    await sub.drain()
    assert rec.seen == [(b"x", 1), (b"x", 2)]
    await _assert_nothing_pending(harness, bus)


async def test_handler_error_is_a_nak(harness: Harness) -> None:
    bus = await harness.bus()

    async def fail_first(msg: BusMessage) -> None:
        if msg.num_delivered == 1:
            raise RuntimeError("boom")
        await msg.ack()

    rec = Recorder(fail_first)
    sub = await bus.subscribe(harness.subject, "work", rec)
    await bus.publish(harness.subject, b"y", "y-1")
    await rec.wait_for(2, timeout=ACK_WAIT * 5)
    await sub.drain()
    assert [n for _, n in rec.seen] == [1, 2]


async def test_redelivery_after_a_consumer_dies_without_acking(harness: Harness) -> None:
    first_bus = await harness.bus()
    stuck = asyncio.Event()

    async def hang(msg: BusMessage) -> None:
        stuck.set()
        await asyncio.sleep(3600)  # takes it and never answers

    dying = Recorder(hang)
    sub1 = await first_bus.subscribe(harness.subject, "work", dying)
    await first_bus.publish(harness.subject, b"z", "z-1")
    await asyncio.wait_for(stuck.wait(), 10)
    # the worker dies: no ack, no nak; for NATS its connection goes away too
    if harness.kind == "nats":
        await first_bus.close()
    else:
        await sub1.cancel()

    second_bus = await harness.bus()
    rec = Recorder()
    t0 = asyncio.get_running_loop().time()
    sub2 = await second_bus.subscribe(harness.subject, "work", rec)
    await rec.wait_for(1, timeout=ACK_WAIT * 8)
    assert rec.seen == [(b"z", 2)]
    assert asyncio.get_running_loop().time() - t0 <= ACK_WAIT * 4
    await sub2.drain()
    assert dying.seen == [(b"z", 1)]


async def test_duplicate_message_ids_are_dropped(harness: Harness) -> None:
    bus = await harness.bus()
    assert await bus.publish(harness.subject, b"a", "same") is True
    assert await bus.publish(harness.subject, b"a", "same") is False
    assert await bus.publish(harness.subject, b"a-again", "same") is False
    assert await bus.publish(harness.subject, b"a", "other") is True
    rec = Recorder()
    sub = await bus.subscribe(harness.subject, "work", rec)
    await rec.wait_for(2)
    await asyncio.sleep(0.3)
    await sub.drain()
    assert sorted(rec.seen) == [(b"a", 1), (b"a", 1)]


async def test_a_durable_shares_work_and_in_progress_extends_the_ack_wait(
    harness: Harness
) -> None:
    b1, b2 = await harness.bus(), await harness.bus()
    seen: list[bytes] = []

    async def slow(msg: BusMessage) -> None:
        seen.append(msg.data)
        for _ in range(5):  # 1.5 x the ack wait, kept alive by progress pings
            await asyncio.sleep(ACK_WAIT * 0.3)
            await msg.in_progress()
        await msg.ack()

    s1 = await b1.subscribe(harness.subject, "work", slow, concurrency=2)
    s2 = await b2.subscribe(harness.subject, "work", slow, concurrency=2)
    for i in range(4):
        await b1.publish(harness.subject, str(i).encode(), f"w-{i}")
    # 4 messages, 2 x 2 slots: all run at once, each exactly once, none redelivered
    await asyncio.sleep(ACK_WAIT * 2.2)
    await asyncio.gather(s1.drain(), s2.drain())
    assert sorted(seen) == [b"0", b"1", b"2", b"3"]
    await _assert_nothing_pending(harness, b1)


async def test_drain_finishes_in_flight_work_and_stops_pulling(harness: Harness) -> None:
    bus = await harness.bus()
    started = asyncio.Event()
    finished: list[bytes] = []

    async def work(msg: BusMessage) -> None:
        started.set()
        await asyncio.sleep(0.5)
        finished.append(msg.data)
        await msg.ack()

    sub = await bus.subscribe(harness.subject, "work", work, concurrency=1)
    await bus.publish(harness.subject, b"first", "d-1")
    await asyncio.wait_for(started.wait(), 10)
    await bus.publish(harness.subject, b"second", "d-2")
    await sub.drain()
    assert finished == [b"first"]  # the in-flight one was finished; no new one was taken
    rec = Recorder()  # what was not taken is still there for the next worker
    sub2 = await bus.subscribe(harness.subject, "work", rec)
    await rec.wait_for(1, timeout=ACK_WAIT * 5)
    await sub2.drain()
    assert rec.seen == [(b"second", 1)]


async def test_a_nak_without_a_delay_redelivers_promptly(harness: Harness) -> None:
    bus = await harness.bus()

    async def nak_first(msg: BusMessage) -> None:
        if msg.num_delivered == 1:
            await msg.nak()
        else:
            await msg.ack()

    rec = Recorder(nak_first)
    sub = await bus.subscribe(harness.subject, "work", rec)
    await bus.publish(harness.subject, b"n", "n-1")
    await rec.wait_for(2, timeout=ACK_WAIT * 0.9)  # well before the ack wait would run out
    await sub.drain()
    assert rec.seen == [(b"n", 1), (b"n", 2)]


async def test_durables_take_only_the_subjects_they_filter(harness: Harness) -> None:
    bus = await harness.bus()
    other = harness.subject.rsplit(".", 1)[0] + ".other"
    mine, theirs = Recorder(), Recorder()
    s1 = await bus.subscribe(f"{harness.subject}.*", "work", mine)
    s2 = await bus.subscribe(other, "other", theirs)
    await bus.publish(f"{harness.subject}.a", b"a", "f-1")
    await bus.publish(other, b"o", "f-2")
    await bus.publish(f"{harness.subject}.b", b"b", "f-3")
    await bus.publish(f"{harness.subject}.b.deeper", b"deep", "f-4")  # `*` is one token
    await mine.wait_for(2)
    await theirs.wait_for(1)
    await asyncio.sleep(0.3)
    await asyncio.gather(s1.drain(), s2.drain())
    assert sorted(mine.seen) == [(b"a", 1), (b"b", 1)]
    assert theirs.seen == [(b"o", 1)]


async def test_bus_subscription_and_message_satisfy_the_port(harness: Harness) -> None:
    bus = await harness.bus()
    assert isinstance(bus, Bus)
    got: list[BusMessage] = []

    async def keep(msg: BusMessage) -> None:
        got.append(msg)
        await msg.ack()

    sub = await bus.subscribe(harness.subject, "work", keep)
    assert isinstance(sub, Subscription)
    await bus.publish(harness.subject, b"\x00bytes\xff", "p-1")
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.05)
    await sub.drain()
    [msg] = got
    assert isinstance(msg, BusMessage)
    assert (msg.subject, msg.data, msg.num_delivered) == (harness.subject, b"\x00bytes\xff", 1)
    assert msg.headers.get("traceparent") is None  # published without headers


async def test_headers_travel_with_the_message(harness: Harness) -> None:
    bus = await harness.bus()
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert await bus.publish(harness.subject, b"x", "h-1", {"traceparent": tp}) is True
    got: list[BusMessage] = []

    async def keep(msg: BusMessage) -> None:
        got.append(msg)
        await msg.ack()
    sub = await bus.subscribe(harness.subject, "work", keep)
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.05)
    await sub.drain()
    [msg] = got
    assert msg.headers["traceparent"] == tp


async def test_the_fake_records_what_was_published() -> None:
    bus = RecordingBus()
    await bus.publish("a.b", b"1", "m1")
    await bus.publish("a.b", b"1", "m1")
    await bus.publish("a.c", b"2", "m2")
    await bus.close()
    assert [(p.msg_id, p.accepted) for p in bus.published] == [
        ("m1", True), ("m1", False), ("m2", True)]
    assert bus.payloads() == [b"1", b"2"] and bus.payloads("a.c") == [b"2"]


async def _assert_nothing_pending(h: Harness, bus: Bus) -> None:
    if isinstance(bus, InProcessBus):
        assert bus.pending_count("work") == 0
        return
    from vanta.adapters.bus.nats_jetstream import NatsJetStreamBus
    assert isinstance(bus, NatsJetStreamBus)
    info = None
    for _ in range(20):  # acks are fire-and-forget; give the server a moment
        info = await bus.js.consumer_info(bus.config.stream, "work")
        if info.num_ack_pending == 0 and info.num_pending == 0:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"still pending: {info}")


def test_subject_wildcards() -> None:
    assert subject_matches("mirror.>", "mirror.dispatch")
    assert subject_matches("mirror.>", "mirror.a.b")
    assert not subject_matches("mirror.>", "mirror")
    assert subject_matches("mirror.*", "mirror.dispatch")
    assert not subject_matches("mirror.*", "mirror.a.b")
    assert subject_matches("mirror.dispatch", "mirror.dispatch")
    assert not subject_matches("mirror.dispatch", "mirror.dispatch.x")
