"""``vanta snapshot VAULT`` as a real process: the snapshot lands in the object store (the
embedded profile's files) under its key with its SHA-256, and reads back; an unknown vault
is refused with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.test_cli_ops import _seed, vanta
from vanta.application.vault_snapshots import read_snapshot
from vanta.bootstrap.stores import build_object_store
from vanta.config import Settings


async def test_vanta_snapshot_writes_one_that_reads_back(tmp_path: Path) -> None:
    follower_id = await _seed(tmp_path, "pro")
    done = vanta(tmp_path, "snapshot", "V1", "--tenant", "t1", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["key"].startswith("snapshots/t1/V1/") and out["key"].endswith("-manual.json")
    snap = await read_snapshot(build_object_store(Settings(data_dir=tmp_path)), out["key"],
                               expected_sha256=out["sha256"])
    assert [f["follower_id"] for f in snap.followers] == [follower_id]
    refused = vanta(tmp_path, "snapshot", "NOPE", "--tenant", "t1")
    assert refused.returncode == 2 and "vault_not_found" in refused.stderr
    shown = vanta(tmp_path, "snapshot-show", "V1", "--tenant", "t1")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["key"] == out["key"]
    early = vanta(tmp_path, "snapshot-show", "V1", "--tenant", "t1", "--at",
                  "2000-01-01T00:00:00Z")
    assert early.returncode == 1 and "not found" in early.stderr
