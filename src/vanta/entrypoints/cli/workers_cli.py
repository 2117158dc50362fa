"""``vanta worker …``: the production delivery path as separate processes.

* ``vanta worker relay`` — leases due outbox rows and publishes them to NATS JetStream
  (and, by default, runs the broker fill confirmer, which also advances cross-rail legs);
* ``vanta worker dispatch --bus nats`` — pulls from JetStream and delivers (run several);
* ``vanta worker dispatch --bus inprocess`` — relay and consumer in one process over the
  in-process bus (embedded profile: no NATS needed).

Run the API with ``vanta serve --no-dispatcher`` beside them, so deliveries go only through
the bus. SIGTERM/SIGINT: the relay stops leasing; a consumer stops pulling, finishes what is
in flight, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from vanta.application.bridged import confirm_fills
from vanta.application.ports.bus import Bus
from vanta.bootstrap import Container, build
from vanta.bootstrap.bus import connect_nats, in_process_bus
from vanta.bootstrap.logging import configure_logging
from vanta.config import Settings
from vanta.entrypoints.cli import event_loop
from vanta.entrypoints.cli.commands import stop_on_signals
from vanta.entrypoints.cli.rollup_cli import rollup_command
from vanta.entrypoints.workers.consumer import DISPATCH_DURABLE, Consumer
from vanta.entrypoints.workers.relay import DEFAULT_RELAY_LEASE, DISPATCH_SUBJECT, Relay

log = logging.getLogger("vanta.workers")
T = TypeVar("T")

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_STREAM = "VANTA_MIRROR"

workers_app = typer.Typer(help="Workers: the outbox relay, dispatch consumers, the log roll-up, "
                               "reconciliation.", no_args_is_help=True)
workers_app.command("rollup")(rollup_command)


class BusKind(StrEnum):
    nats = "nats"
    inprocess = "inprocess"


DataDir = Annotated[Path | None, typer.Option(help="Embedded data directory (VANTA_DATA_DIR)")]
NatsUrl = Annotated[str | None, typer.Option(
    "--nats-url", help=f"NATS server URL (VANTA_NATS_URL, default {DEFAULT_NATS_URL})")]
Stream = Annotated[str, typer.Option(help="JetStream stream name")]
Migrate = Annotated[bool, typer.Option(help="apply database migrations first "
                                            "(else run `vanta db upgrade` once beforehand)")]


def _settings(data_dir: Path | None) -> Settings:
    return Settings(data_dir=data_dir) if data_dir is not None else Settings()


def nats_url(settings: Settings, override: str | None = None) -> str:
    """``--nats-url``, else ``Settings.nats_url`` (``VANTA_NATS_URL``)."""
    return override or settings.nats_url


async def _unless_stopped(aw: Awaitable[T], stop: asyncio.Event) -> T | None:
    """``aw``'s result, or None if ``stop`` was set first (e.g. SIGTERM while NATS is away)."""
    task = asyncio.ensure_future(aw)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return None


async def _connect_nats(url: str, stream: str,
                        stop: asyncio.Event) -> Bus | None:
    log.info("connecting to NATS", extra={"url": url, "stream": stream})
    return await _unless_stopped(connect_nats(url, stream), stop)


async def _confirm_fills_loop(c: Container, stop: asyncio.Event, every_s: float) -> None:
    brokers = c.dispatcher.brokers
    if brokers is None:
        return
    while not stop.is_set():
        try:
            await confirm_fills(c.uow, brokers, clock=c.dispatcher.clock,
                                journal=c.dispatcher.journal)
        except Exception:
            log.exception("fill confirmation pass failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every_s)


async def _prepare(s: Settings, migrate: bool, service: str) -> Container:
    configure_logging(s.data_dir, keep_days=s.log_max_days, service=service)
    c = build(s)
    if migrate:
        await c.migrate()
    return c


async def run_relay(s: Settings, *, url: str, stream: str = DEFAULT_STREAM,
                    lease: timedelta = DEFAULT_RELAY_LEASE, poll_seconds: float = 0.1,
                    batch: int = 256, fills: bool = True, migrate: bool = False,
                    stop: asyncio.Event | None = None) -> None:
    stop = stop or stop_on_signals()
    c = await _prepare(s, migrate, "vanta-relay")
    bus = None
    try:
        bus = await _connect_nats(url, stream, stop)
        if bus is None:
            return
        relay = Relay(c.uow, bus, lease, poll_seconds=poll_seconds, batch=batch,
                      clock=c.dispatcher.clock)
        jobs = [relay.run(stop)]
        listener = c.wake_on_commit(relay.wakeup, stop)
        if listener is not None:  # woken by commits, not only by the poll
            jobs.append(listener)
        if fills:
            jobs.append(_confirm_fills_loop(c, stop, max(1.0, poll_seconds)))
        log.info("relay running", extra={"url": url, "stream": stream})
        await asyncio.gather(*jobs)
    finally:
        if bus is not None:
            await bus.close()
        await c.close()


async def run_dispatch(s: Settings, *, bus_kind: BusKind, url: str, stream: str = DEFAULT_STREAM,
                       concurrency: int | None = None, durable: str = DISPATCH_DURABLE,
                       lease: timedelta | None = None, poll_seconds: float = 0.1,
                       migrate: bool = False, stop: asyncio.Event | None = None) -> None:
    stop = stop or stop_on_signals()
    c = await _prepare(s, migrate, "vanta-dispatch")
    n = concurrency or s.dispatcher_concurrency
    try:
        if bus_kind is BusKind.inprocess:
            # in memory only: a restart loses queued messages, so re-lease after the
            # dispatcher's (shorter) lease rather than the NATS relay's
            await _run_inprocess(c, stop, n, durable, lease or c.dispatcher.config.lease,
                                 poll_seconds)
            return
        bus = await _connect_nats(url, stream, stop)
        if bus is None:
            return
        try:
            consumer = Consumer(c.dispatcher, bus, n, durable=durable)
            log.info("dispatch consumer running", extra={"url": url, "concurrency": n})
            await consumer.run(stop)  # returns after the drain
        finally:
            await bus.close()
    finally:
        await c.close()


async def _run_inprocess(c: Container, stop: asyncio.Event, concurrency: int, durable: str,
                         lease: timedelta, poll_seconds: float) -> None:
    bus = in_process_bus()
    relay = Relay(c.uow, bus, lease, poll_seconds=poll_seconds, clock=c.dispatcher.clock,
                  wakeup=c.outbox_written)
    consumer = Consumer(c.dispatcher, bus, concurrency, subject=DISPATCH_SUBJECT,
                        durable=durable)
    await consumer.start()
    relay_stop = asyncio.Event()
    relay_task = asyncio.create_task(relay.run(relay_stop))
    fills_task = asyncio.create_task(_confirm_fills_loop(c, relay_stop, 1.0))
    log.info("in-process relay and dispatch consumer running", extra={"concurrency": concurrency})
    try:
        await stop.wait()
    finally:
        relay_stop.set()
        await asyncio.gather(relay_task, fills_task, return_exceptions=True)
        await consumer.drain()  # what the bus still holds is re-leased on the next start
        await bus.close()


@workers_app.command("relay")
def relay_command(
    url: NatsUrl = None,
    stream: Stream = DEFAULT_STREAM,
    lease_seconds: Annotated[float, typer.Option(
        help="how long a published row waits for a consumer before it is published again")
    ] = DEFAULT_RELAY_LEASE.total_seconds(),
    poll_seconds: Annotated[float, typer.Option(help="outbox poll interval")] = 0.1,
    batch: Annotated[int, typer.Option(help="rows leased per pass")] = 256,
    fills: Annotated[bool, typer.Option(help="also run the broker fill confirmer (it also "
                                        "advances cross-rail legs: the asset leg after its "
                                        "conversion)")] = True,
    migrate: Migrate = False,
    data_dir: DataDir = None,
) -> None:
    """Publish due outbox rows to NATS JetStream (the database stays the source of truth)."""
    s = _settings(data_dir)
    event_loop.run(run_relay(s, url=nats_url(s, url), stream=stream,
                             lease=timedelta(seconds=lease_seconds), poll_seconds=poll_seconds,
                             batch=batch, fills=fills, migrate=migrate), s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)


@workers_app.command("dispatch")
def dispatch_command(
    bus: Annotated[BusKind, typer.Option(help="nats: pull from JetStream (run a relay too); "
                                              "inprocess: relay and consumer in this process")
                   ] = BusKind.nats,
    concurrency: Annotated[int | None, typer.Option(
        help="deliveries in flight (default VANTA_DISPATCHER_CONCURRENCY)")] = None,
    url: NatsUrl = None,
    stream: Stream = DEFAULT_STREAM,
    durable: Annotated[str, typer.Option(help="JetStream durable consumer name")
                       ] = DISPATCH_DURABLE,
    migrate: Migrate = False,
    data_dir: DataDir = None,
) -> None:
    """Deliver child orders taken from the bus; SIGTERM drains in-flight deliveries first."""
    s = _settings(data_dir)
    event_loop.run(run_dispatch(s, bus_kind=bus, url=nats_url(s, url), stream=stream,
                                concurrency=concurrency, durable=durable, migrate=migrate),
                   s.event_loop,
                   gc_young_threshold=s.gc_young_threshold)
