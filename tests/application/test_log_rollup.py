"""The log roll-up over the fakes: a closed day's rotated files go to the object store with a
manifest of their SHA-256; a second pass stores nothing new; local copies leave the disk only
past the retention and only when the stored bytes are theirs; a file changed after its upload
is reported and kept."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

from tests.fakes.journal import MemoryLogArchive
from tests.fakes.objectstore import FakeObjectStore
from vanta.application.log_rollup import MANIFEST_FORMAT, roll_up_logs

D1 = {"mirror_dispatch.2026-03-01.log": b'{"a":1}\n{"a":2}\n',
      "trade_log.2026-03-01.jsonl": b'{"t":1}\n'}
D2 = {"trade_log.2026-03-02.jsonl": b'{"t":2}\n'}


async def test_a_closed_day_goes_up_with_a_sha256_manifest() -> None:
    archive, store = MemoryLogArchive({**D1, **D2}), FakeObjectStore()
    now = datetime(2026, 3, 2, 0, 30, tzinfo=UTC)  # day 1 closed 30 min ago; day 2 open
    r = await roll_up_logs(archive, store, host="h1", now=now, keep_days=7)
    assert r.manifests == ["logs/h1/2026-03-01/manifest.json"] and r.problems == []
    manifest = json.loads(await store.get("logs/h1/2026-03-01/manifest.json"))
    assert manifest["format"] == MANIFEST_FORMAT and manifest["day"] == "2026-03-01"
    for entry in manifest["files"]:
        data = D1[entry["name"]]
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert (entry["bytes"], entry["lines"]) == (len(data), data.count(b"\n"))
        assert await store.get(entry["key"]) == data
    assert not await store.exists("logs/h1/2026-03-02/manifest.json")
    assert r.deleted == []  # within the retention: the local copies stay
    again = await roll_up_logs(archive, store, host="h1", now=now, keep_days=7)
    assert (again.manifests, again.uploaded, again.problems) == ([], [], [])


async def test_local_copies_past_the_retention_are_deleted_once_stored() -> None:
    archive, store = MemoryLogArchive(D1), FakeObjectStore()
    later = datetime(2026, 3, 10, tzinfo=UTC)
    r = await roll_up_logs(archive, store, host="h1", now=later, keep_days=7)
    assert sorted(r.deleted) == sorted(D1) and archive.rotated() == []
    assert sorted(r.uploaded) == sorted(f"logs/h1/2026-03-01/{n}" for n in D1)


async def test_a_file_changed_after_its_upload_is_reported_and_kept() -> None:
    archive, store = MemoryLogArchive(D1), FakeObjectStore()
    await roll_up_logs(archive, store, host="h1", now=datetime(2026, 3, 2, 1, tzinfo=UTC))
    archive.files["trade_log.2026-03-01.jsonl"] += b'{"late":1}\n'
    r = await roll_up_logs(archive, store, host="h1", now=datetime(2026, 3, 20, tzinfo=UTC),
                           keep_days=7)
    assert r.problems and "trade_log.2026-03-01.jsonl" in r.problems[0]
    assert "trade_log.2026-03-01.jsonl" in archive.files  # not deleted
