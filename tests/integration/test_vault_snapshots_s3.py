"""Vault snapshots against a real S3-compatible store (SeaweedFS, as in
``test_s3_objectstore``): written under their immutable key with the recorded SHA-256, read
back exactly, and a second, different write to the same key refused by the store."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from tests.fakes.uow import MemoryDatabase
from tests.integration.test_s3_objectstore import Weed, new_bucket, run_weed
from vanta.adapters.objectstore.s3 import S3ObjectStore
from vanta.application.navs import record_nav
from vanta.application.ports.objectstore import ObjectExists, sha256_hex
from vanta.application.seed import create_tenant, create_vault
from vanta.application.vault_snapshots import (
    read_snapshot,
    snapshot_at,
    take_due_snapshots,
    take_snapshot,
)

NOW = datetime(2026, 5, 4, 0, 0, 7, tzinfo=UTC)


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    with run_weed(tmp_path_factory.mktemp("weed")) as w:
        yield w


async def test_snapshots_on_seaweedfs(weed: Weed) -> None:
    db = MemoryDatabase()
    await create_tenant(db.uow(), tenant_id="t1", name="t1")
    await create_vault(db.uow(), tenant_id="t1", vault_id="V1", label="V1")
    await record_nav(db.uow(), tenant_id="t1", entity="vault", entity_id="V1",
                     raw={"nav": "2500.5", "as_of": "2026-05-03T12:00:00Z"}, actor="t",
                     clock=lambda: NOW)
    store = S3ObjectStore(weed.config(new_bucket()))
    try:
        [done] = await take_due_snapshots(db.uow, store, now=NOW, interval=timedelta(days=1))
        assert done.key == "snapshots/t1/V1/20260504T000000.000000Z-scheduled.json"
        assert done.created and done.sha256 == sha256_hex(await store.get(done.key))
        snap = await read_snapshot(store, done.key, expected_sha256=done.sha256)
        assert snap.nav() == Decimal("2500.5") and snap.as_of == NOW
        assert (await snapshot_at(store, "t1", "V1", NOW)).key == done.key
        # the scheduler again (another process, a restart): the key is taken, nothing written
        assert await take_due_snapshots(db.uow, store, now=NOW + timedelta(hours=1),
                                        interval=timedelta(days=1)) == []
        # different bytes under the same key are refused by the store itself
        with pytest.raises(ObjectExists):
            await store.put(done.key, b"{}")
        later = await take_snapshot(db.uow, store, tenant_id="t1", vault_id="V1",
                                    at=NOW + timedelta(minutes=5))
        assert await store.list("snapshots/t1/V1/") == [done.key, later.key]
    finally:
        await store.close()
