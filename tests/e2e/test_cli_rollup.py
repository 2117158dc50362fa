"""``vanta worker rollup --once`` on a data folder: closed days' rotated files go to the object
store (the embedded one: ``<data>/objects``) with a manifest naming their SHA-256; files past
the retention leave the disk, recent ones stay; the active files are never touched."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
VANTA = [sys.executable, "-m", "vanta.entrypoints.cli.main"]


def test_rollup_once_uploads_with_a_manifest_and_prunes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    logs = data / "logs"
    logs.mkdir(parents=True)
    today = datetime.now(UTC).date()
    old, recent = today - timedelta(days=10), today - timedelta(days=2)
    files = {f"mirror_dispatch.{old}.log": b'{"attempt":1}\n',
             f"trade_log.{old}.jsonl": b'{"to":"ack"}\n{"to":"sent"}\n',
             f"trade_log.{recent}.jsonl": b'{"to":"pending"}\n'}
    for name, body in files.items():
        (logs / name).write_bytes(body)
    (logs / "trade_log.jsonl").write_bytes(b'{"timestamp":"%s"}\n' % str(today).encode())
    env = {**os.environ, "VANTA_LOG_RETENTION_DAYS": "7"}
    env.pop("VANTA_S3_BUCKET", None)
    done = subprocess.run([*VANTA, "worker", "rollup", "--once", "--host", "h1",
                           "--data-dir", str(data)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "manifests written: 2" in done.stdout
    objects = data / "objects" / "logs" / "h1"
    manifest = json.loads((objects / str(old) / "manifest.json").read_text())
    assert {e["name"]: e["sha256"] for e in manifest["files"]} == {
        n: hashlib.sha256(b).hexdigest() for n, b in files.items() if str(old) in n}
    assert (objects / str(recent) / "manifest.json").exists()
    left = sorted(p.name for p in logs.iterdir())
    assert f"trade_log.{recent}.jsonl" in left and "trade_log.jsonl" in left
    assert not [n for n in left if str(old) in n]  # past the retention, stored: deleted
