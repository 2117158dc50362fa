"""Vault snapshots in the (fake) object store: what one holds, its immutable key and hash (also
in the audit log), the scheduler's once-per-interval writes, and reading one back exactly."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal

import pytest

from tests.application.conftest import START, World
from tests.fakes.objectstore import FakeObjectStore
from vanta.application.navs import record_nav
from vanta.application.ports.objectstore import (
    ObjectCorrupted,
    ObjectNotFound,
    ObjectStoreUnavailable,
)
from vanta.application.vault_snapshots import (
    SnapshotSchedule,
    read_snapshot,
    snapshot_at,
    take_due_snapshots,
    take_snapshot,
)
from vanta.domain.errors import NotFound

DAY = timedelta(days=1)


async def _traded_vault(w: World) -> tuple[str, str]:
    """Two followers; one order of 10 AAPL acknowledged; NAVs for the vault and one follower."""
    f1 = await w.follower(scale="0.5")
    f2 = await w.follower(scale="0.2", kill_switch=True)
    await w.submit(qty="10")
    await w.drain()
    await record_nav(w.uow(), tenant_id="tnt_a", entity="vault", entity_id="VA",
                     raw={"nav": "100000.25"}, actor="t", clock=w.clock)
    await record_nav(w.uow(), tenant_id="tnt_a", entity="follower", entity_id=f1,
                     raw={"nav": "5000.10"}, actor="t", clock=w.clock)
    return f1, f2


async def test_a_snapshot_holds_configs_positions_and_navs_and_is_audited(
        world: World) -> None:
    f1, f2 = await _traded_vault(world)
    store = FakeObjectStore()
    world.clock.advance(60)
    done = await take_snapshot(world.db.uow, store, tenant_id="tnt_a", vault_id="VA",
                               at=world.clock(), actor="cli:ops")
    stamp = world.clock.now.strftime("%Y%m%dT%H%M%S.%fZ")
    assert done.key == f"snapshots/tnt_a/VA/{stamp}-manual.json" and done.created
    snap = await read_snapshot(store, done.key, expected_sha256=done.sha256)
    assert (snap.tenant_id, snap.vault_id, snap.as_of) == ("tnt_a", "VA", world.clock.now)
    assert snap.positions(f1) == {"AAPL": Decimal("5")}
    assert snap.positions(f2) == {}, "a follower with its kill switch on got nothing"
    assert snap.nav() == Decimal("100000.25") and snap.nav(f1) == Decimal("5000.10")
    assert snap.nav(f2) is None
    by_id = {f["follower_id"]: f for f in snap.followers}
    assert (by_id[f1]["scale"], by_id[f2]["kill_switch"]) == ("0.5", True)
    assert snap.doc["manager_positions"]["AAPL"]["qty"] == "10"
    raw = store.objects[done.key].data.decode()
    assert "hooks.example" not in raw and "ref" not in json.loads(raw)["followers"][0]
    for secret in world.secrets_of.values():
        assert secret not in raw
    async with world.uow() as u:
        [event] = [e for e in await u.audit.for_entity("tnt_a", "VA")
                   if e.action == "snapshot_written"]
    assert event.payload == {"key": done.key, "sha256": done.sha256, "size": done.size,
                             "reason": "manual"}
    assert event.actor == "cli:ops"


async def test_another_tenants_vault_is_not_found(world: World) -> None:
    with pytest.raises(NotFound):
        await take_snapshot(world.db.uow, FakeObjectStore(), tenant_id="tnt_b",
                            vault_id="VA", at=world.clock())


async def test_the_scheduler_writes_each_interval_once_per_vault(world: World) -> None:
    await _traded_vault(world)
    store = FakeObjectStore()
    world.clock.advance(seconds=DAY.total_seconds())  # the vaults existed at midnight
    first = await take_due_snapshots(world.db.uow, store, now=world.clock(), interval=DAY)
    midnight = (START + DAY).strftime("%Y%m%d") + "T000000.000000Z-scheduled.json"
    assert sorted(w.key for w in first) == [f"snapshots/tnt_a/VA/{midnight}",
                                            f"snapshots/tnt_b/VB/{midnight}"]
    world.clock.advance(3600)
    assert await take_due_snapshots(world.db.uow, store, now=world.clock(),
                                    interval=DAY) == []
    world.clock.advance(seconds=DAY.total_seconds())
    assert len(await take_due_snapshots(world.db.uow, store, now=world.clock(),
                                        interval=DAY)) == 2
    assert len(store.objects) == 4


async def test_a_scheduled_snapshot_is_keyed_by_its_interval_and_read_when_taken(
        world: World) -> None:
    f1, _ = await _traded_vault(world)
    store = FakeObjectStore()
    [done, _] = await take_due_snapshots(world.db.uow, store, now=world.clock(), interval=DAY)
    assert done.key.endswith(START.strftime("%Y%m%d") + "T000000.000000Z-scheduled.json")
    snap = await read_snapshot(store, done.key)
    assert snap.as_of == world.clock.now and snap.positions(f1) == {"AAPL": Decimal("5")}
    assert snap.doc["interval_start"] == START.replace(hour=0).isoformat()
    # keyed at midnight, but its state is of 14:00: not what a replay of 10:00 starts from
    with pytest.raises(ObjectNotFound):
        await snapshot_at(store, "tnt_a", "VA", START.replace(hour=10))
    assert (await snapshot_at(store, "tnt_a", "VA", world.clock.now)).key == done.key


async def test_the_schedule_runs_once_per_interval_and_again_after_a_failure(
        world: World) -> None:
    store = FakeObjectStore()
    sched = SnapshotSchedule(DAY, retry_after=timedelta(minutes=1))
    world.clock.advance(seconds=DAY.total_seconds())
    store.fail_next(ObjectStoreUnavailable("down"))
    with pytest.raises(ObjectStoreUnavailable):
        await sched.run_if_due(world.db.uow, store, world.clock())
    world.clock.advance(30)
    assert await sched.run_if_due(world.db.uow, store, world.clock()) is None, "backing off"
    world.clock.advance(30)
    assert len(await sched.run_if_due(world.db.uow, store, world.clock()) or []) == 2
    world.clock.advance(60)
    assert await sched.run_if_due(world.db.uow, store, world.clock()) is None
    assert await SnapshotSchedule(timedelta(0)).run_if_due(
        world.db.uow, store, world.clock()) is None, "interval 0: off"


async def test_snapshot_at_reads_the_latest_at_or_before_and_checks_the_bytes(
        world: World) -> None:
    store = FakeObjectStore()
    keys = []
    for _ in range(3):
        world.clock.advance(3600)
        keys.append((await take_snapshot(world.db.uow, store, tenant_id="tnt_a",
                                         vault_id="VA", at=world.clock())).key)
    got = await snapshot_at(store, "tnt_a", "VA", START + timedelta(hours=2, minutes=30))
    assert got.key == keys[1]
    assert (await snapshot_at(store, "tnt_a", "VA", world.clock.now)).key == keys[2]
    with pytest.raises(ObjectNotFound):
        await snapshot_at(store, "tnt_a", "VA", START)
    with pytest.raises(ValueError, match="expected"):
        await read_snapshot(store, keys[0], expected_sha256="0" * 64)
    store.tamper(keys[0], store.objects[keys[0]].data.replace(b'"VA"', b'"VX"'))
    with pytest.raises(ObjectCorrupted):
        await read_snapshot(store, keys[0])


async def test_a_store_that_cannot_be_made_is_tried_once_per_retry_period(
        world: World) -> None:
    store, made = FakeObjectStore(), []

    def factory() -> FakeObjectStore:
        made.append(world.clock.now)
        if len(made) == 1:
            raise ObjectStoreUnavailable("no bucket")
        return store
    sched = SnapshotSchedule(DAY, retry_after=timedelta(minutes=1))
    with pytest.raises(ObjectStoreUnavailable):
        await sched.run_if_due(world.db.uow, factory, world.clock())
    for _ in range(5):
        world.clock.advance(10)
        assert await sched.run_if_due(world.db.uow, factory, world.clock()) is None
    world.clock.advance(10)
    assert len(await sched.run_if_due(world.db.uow, factory, world.clock()) or []) == 2
    assert len(made) == 2
