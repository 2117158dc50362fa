"""The dispatch consumer keeps a slow batch's messages alive with one shared heartbeat."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from vanta.adapters.bus.inprocess import InProcessBus
from vanta.adapters.db.repositories import OutboxLease
from vanta.application.dispatch import BatchOutcome, DispatchConfig
from vanta.application.ports.records_orders import OutboxRecord
from vanta.entrypoints.workers.consumer import Consumer


class _NoKeeper:
    """Its leases never lapse here: nothing to renew."""

    def hold(self, leases: object) -> None: ...

    def drop(self, row_ids: object) -> None: ...

    async def close(self) -> None: ...


class SlowDispatcher:
    """Stands in for the dispatcher: every lease is live, every batch takes ``seconds``."""

    def __init__(self, seconds: float) -> None:
        self.config = DispatchConfig(lease=timedelta(seconds=30), max_batches=1)
        self.keeper = _NoKeeper()
        self.seconds = seconds
        self.batches: list[list[int]] = []

    def free_slots(self) -> int:
        return 0  # its batches hold every slot until they end

    def may_add_batch(self, open_batches: int) -> bool:
        return False

    async def deliver_leased(self, leases: list[OutboxLease], lease: timedelta,
                             reserved: int = 0) -> tuple[list[OutboxRecord], BatchOutcome]:
        self.batches.append([x.row_id for x in leases])
        await asyncio.sleep(self.seconds)
        now = datetime.now(UTC)
        return [OutboxRecord(x.row_id, "mirror.dispatch", str(x.row_id), {}, now, now,
                             now + lease, 1, None) for x in leases], BatchOutcome()


async def _run(heartbeat_s: float | None) -> tuple[SlowDispatcher, Consumer]:
    bus = InProcessBus(ack_wait_s=0.15)
    dispatcher = SlowDispatcher(seconds=0.6)
    consumer = Consumer(dispatcher, bus, 4, subject="mirror.dispatch",  # type: ignore[arg-type]
                        heartbeat_s=heartbeat_s)
    await consumer.start()
    for i in (1, 2, 3):
        await bus.publish("mirror.dispatch",
                          json.dumps({"outbox_id": i, "fo_id": f"fo{i}", "lease": 1}).encode(),
                          f"fo{i}:1")
    await asyncio.sleep(1.2)
    await consumer.drain()
    await bus.close()
    return dispatcher, consumer


async def test_waiting_messages_are_kept_in_progress_and_delivered_once() -> None:
    dispatcher, consumer = await _run(heartbeat_s=0.05)
    # the batch outlived the ack wait four times over, yet no message came again
    assert sorted(i for b in dispatcher.batches for i in b) == [1, 2, 3]
    assert consumer.delivered == 3 and consumer.skipped == 0


async def test_without_the_heartbeat_the_bus_redelivers_a_slow_batch() -> None:
    # the control: the same slow batch with no heartbeat outlives the ack wait
    dispatcher, _ = await _run(heartbeat_s=None)
    assert len([i for b in dispatcher.batches for i in b]) > 3
