"""The three holes of the audit chain, tried on a copy of the embedded database: deleting the
event with the highest seq, rewriting the tail consistently (hashes recomputed with the
project's own hash function, head row updated), and moving an event into another tenant.
Each is reported by ``vanta audit-verify``; the tail rewrite only through the signed anchor
in the object store (``vanta audit anchor``)."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vanta.adapters.objectstore.local import LocalObjectStore
from vanta.application.audit_anchor import AuditAnchoring
from vanta.application.seed import create_tenant
from vanta.bootstrap import build
from vanta.bootstrap.signing import build_verifier
from vanta.config import Settings
from vanta.domain.audit import AuditEvent, hash_of
from vanta.entrypoints.cli.main import app

runner = CliRunner()


def _cli(data_dir: Path, *args: str) -> tuple[int, str]:
    res = runner.invoke(app, [*args, "--data-dir", str(data_dir)],
                        env={"VANTA_PROFILE": "test", "COLUMNS": "400"})
    return res.exit_code, res.output


@pytest.fixture
async def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "live"
    c = build(Settings(data_dir=d, profile="test"))
    await c.migrate()
    for t in ("tnt_a", "tnt_b"):
        await create_tenant(c.uow(), tenant_id=t, name=t)
    async with c.uow() as uow:
        for i in range(5):
            await uow.audit.append(entity="vault", entity_id=f"V{i}", action="noted",
                                   actor="test", payload={"i": i}, tenant_id="tnt_a")
        # a dispatch batch: one chained event per tenant, its records as Merkle leaves
        await uow.audit.append_batch(
            [{"entity": "follower_order", "entity_id": f"fo_{i}", "action": "dispatch:ack",
              "tenant_id": "tnt_a" if i < 6 else "tnt_b", "payload": {"status": 200}}
             for i in range(8)], actor="dispatcher")
        await uow.commit()
    await c.close()
    return d


def _copy(src: Path, dst: Path) -> sqlite3.Connection:
    shutil.copytree(src, dst)
    return sqlite3.connect(dst / "vanta.db")


def _events(db: sqlite3.Connection) -> list[AuditEvent]:
    rows = db.execute("SELECT event_id, seq, entity, entity_id, action, actor, payload, ts, "
                      "prev_hash, hash, tenant_id, hash_v FROM audit_events ORDER BY seq")
    return [AuditEvent(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]), r[7], r[8], r[9],
                       r[10], r[11]) for r in rows]


def test_an_untouched_chain_is_intact_and_names_its_anchor(data_dir: Path) -> None:
    code, out = _cli(data_dir, "audit-verify")
    assert code == 0 and "intact" in out and "no anchor yet" in out, out
    code, out = _cli(data_dir, "audit", "anchor")
    assert code == 0 and "anchored event #" in out, out
    code, again = _cli(data_dir, "audit", "anchor")
    assert code == 0 and "unchanged" in again
    code, out = _cli(data_dir, "audit-verify")
    assert code == 0 and "intact" in out and "audit/anchors/" in out, out


def test_a_batch_has_one_event_per_tenant_with_its_records(data_dir: Path,
                                                            tmp_path: Path) -> None:
    db = _copy(data_dir, tmp_path / "copy")
    batches = [e for e in _events(db) if e.action == "dispatch:batch"]
    assert [(e.tenant_id, e.payload["size"]) for e in batches] == [("tnt_a", 6), ("tnt_b", 2)]
    rows = db.execute("SELECT event_id, count(*) FROM audit_leaves GROUP BY event_id").fetchall()
    assert sorted(n for _, n in rows) == [2, 6]


@pytest.mark.parametrize(("sql", "why"), [
    ("UPDATE audit_leaves SET record = replace(record, '\"status\":200', "
     "'\"status\":500') WHERE idx = 3 AND tenant_id = 'tnt_a'", "Merkle root"),
    ("DELETE FROM audit_leaves WHERE idx = 5 AND tenant_id = 'tnt_a'", "removed"),
    ("UPDATE audit_leaves SET entity_id = 'fo_other' WHERE idx = 1 AND tenant_id = 'tnt_b'",
     "look-up columns"),
])
def test_altering_one_record_of_a_batch_is_caught(data_dir: Path, tmp_path: Path, sql: str,
                                                 why: str) -> None:
    db = _copy(data_dir, tmp_path / "copy")
    assert db.execute(sql).rowcount == 1
    db.commit()
    code, out = _cli(tmp_path / "copy", "audit-verify")
    assert code == 1 and "broken" in out and why in out, out
    code, out = _cli(tmp_path / "copy", "audit", "anchor")  # nor is such a head signed
    assert code != 0 and why in out and "anchored event" not in out, out


def test_deleting_the_last_event_is_caught_by_the_recorded_head(
        data_dir: Path, tmp_path: Path) -> None:
    db = _copy(data_dir, tmp_path / "copy")
    db.execute("DELETE FROM audit_events WHERE seq = (SELECT max(seq) FROM audit_events)")
    db.commit()
    code, out = _cli(tmp_path / "copy", "audit-verify")
    assert code == 1 and "broken" in out and "recorded head" in out, out


def test_a_tail_rewritten_with_recomputed_hashes_is_caught_by_the_anchor(
        data_dir: Path, tmp_path: Path) -> None:
    assert _cli(data_dir, "audit", "anchor")[0] == 0
    db = _copy(data_dir, tmp_path / "copy")
    events = _events(db)
    start = events[-3].seq  # rewrite the last three events, consistently
    prev = events[-4].hash
    for e in events[-3:]:
        forged = AuditEvent(e.event_id, e.seq, e.entity, e.entity_id, e.action, e.actor,
                            {**e.payload, "i": 99}, e.ts, prev, "", e.tenant_id, e.hash_v)
        h = hash_of(forged)
        db.execute("UPDATE audit_events SET payload = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                   (json.dumps(forged.payload), prev, h, e.seq))
        prev = h
    db.execute("UPDATE audit_chain_head SET hash = ? WHERE id = 1", (prev,))
    db.commit()
    # the chain and head alone are consistent again...
    from vanta.domain.audit import verify_chain
    assert verify_chain(_events(db)) is None and start > 1
    # ...but the anchor recorded the head's old hash
    code, out = _cli(tmp_path / "copy", "audit-verify")
    assert code == 1 and "rewritten" in out and "audit/anchors/" in out, out
    code, out = _cli(tmp_path / "copy", "audit", "anchor")
    assert code == 1 and "refused" in out, out


def test_moving_an_event_to_another_tenant_breaks_its_hash(
        data_dir: Path, tmp_path: Path) -> None:
    db = _copy(data_dir, tmp_path / "copy")
    seq = _events(db)[-2].seq
    db.execute("UPDATE audit_events SET tenant_id = 'tnt_b' WHERE seq = ?", (seq,))
    db.commit()
    code, out = _cli(tmp_path / "copy", "audit-verify")
    assert code == 1 and f"event #{seq} does not match its hash" in out, out


def test_relabelling_an_event_as_hash_version_1_is_refused(
        data_dir: Path, tmp_path: Path) -> None:
    db = _copy(data_dir, tmp_path / "copy")
    events = _events(db)
    e = events[-1]
    old = AuditEvent(e.event_id, e.seq, e.entity, e.entity_id, e.action, e.actor, e.payload,
                     e.ts, e.prev_hash, "", "tnt_b", 1)
    db.execute("UPDATE audit_events SET tenant_id = 'tnt_b', hash_v = 1, hash = ? "
               "WHERE seq = ?", (hash_of(old), e.seq))
    db.execute("UPDATE audit_chain_head SET hash = ? WHERE id = 1", (hash_of(old),))
    db.commit()
    code, out = _cli(tmp_path / "copy", "audit-verify")
    assert code == 1 and "versions never go down" in out, out


def test_an_anchor_signed_by_another_key_is_not_used(data_dir: Path, tmp_path: Path) -> None:
    assert _cli(data_dir, "audit", "anchor")[0] == 0
    other = tmp_path / "other.pub"
    other.write_text("A" * 43)  # a well-formed key that is not the platform's
    code, out = _cli(data_dir, "audit-verify", "--public-key", str(other))
    assert code == 1 and "signature does not verify" in out, out
    bad = tmp_path / "bad.pub"
    bad.write_text("not a key")
    assert _cli(data_dir, "audit-verify", "--public-key", str(bad))[0] == 2


async def test_the_scheduler_anchors_the_head_periodically(data_dir: Path) -> None:
    import asyncio

    from vanta.entrypoints.api.app import run_scheduler
    c = build(Settings(data_dir=data_dir, profile="test", audit_anchor_interval_seconds=0.2))
    objects = data_dir / "objects" / "audit" / "anchors"
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(c, stop, interval=0.05))
    try:
        for _ in range(200):
            if objects.is_dir() and _anchors(objects):
                break
            await asyncio.sleep(0.05)
        assert len(_anchors(objects)) == 1
        async with c.uow() as uow:  # the head moves; the next pass anchors it
            await uow.audit.append(entity="vault", entity_id="V9", action="noted",
                                   actor="test", payload={}, tenant_id="tnt_a")
            await uow.commit()
        for _ in range(200):
            if len(_anchors(objects)) == 2:
                break
            await asyncio.sleep(0.05)
        assert len(_anchors(objects)) == 2
        assert c.signer is not None
        report = await AuditAnchoring(c.uow, LocalObjectStore(data_dir / "objects"), c.signer,
                                      build_verifier()).verify()
        assert report.ok and report.verdict.anchor is not None
        assert report.verdict.anchor.seq == report.verdict.count
    finally:
        stop.set()
        await task
        await c.close()


def _anchors(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


async def test_events_from_before_0008_keep_their_version_1_hashes(tmp_path: Path) -> None:
    from vanta.adapters.db.migrate import upgrade_async
    from vanta.domain.audit import GENESIS_HASH, chain_event, verify_chain
    d = tmp_path / "old"
    d.mkdir()
    url = f"sqlite+aiosqlite:///{d / 'vanta.db'}"
    await upgrade_async(url, "0007")
    db = sqlite3.connect(d / "vanta.db")
    prev = GENESIS_HASH
    for seq in (1, 2):
        e = chain_event(prev_hash=prev, seq=seq, event_id=f"e{seq}", entity="vault",
                        entity_id="V", action="noted", actor="t", payload={"n": seq},
                        ts="2026-01-01T00:00:00.000000Z", hash_v=1)
        db.execute("INSERT INTO audit_events (event_id, seq, tenant_id, entity, entity_id, "
                   "action, actor, payload, ts, prev_hash, hash) VALUES "
                   "(?, ?, 'tnt_a', ?, ?, ?, ?, ?, ?, ?, ?)",
                   (e.event_id, seq, e.entity, e.entity_id, e.action, e.actor,
                    json.dumps(e.payload), e.ts, e.prev_hash, e.hash))
        prev = e.hash
    db.execute("INSERT INTO audit_chain_head (id, seq, hash) VALUES (1, 2, ?)", (prev,))
    db.commit()
    c = build(Settings(data_dir=d, profile="test"))
    await c.migrate()
    async with c.uow() as uow:
        await uow.audit.append(entity="vault", entity_id="V", action="noted", actor="t",
                               payload={}, tenant_id="tnt_a")
        await uow.commit()
    async with c.uow() as uow:
        events = await uow.audit.all()
    await c.close()
    assert [e.hash_v for e in events] == [1, 1, 2]
    assert verify_chain(events) is None
