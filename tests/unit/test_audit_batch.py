"""Batch audit events (vanta.domain.audit_batch): the stored records of a batch against the
Merkle root its chained event carries; every way of altering them is named."""

from __future__ import annotations

import dataclasses
import json

from vanta.domain.audit import GENESIS_HASH, chain_event
from vanta.domain.audit_batch import (
    BATCH_ACTION,
    BATCH_ENTITY,
    Leaf,
    batches_problems,
    proof,
    proves,
    seal,
)


@dataclasses.dataclass
class Stored:
    idx: int
    tenant_id: str | None
    entity_id: str
    action: str
    record: str


def _batch(n: int = 5, tenant: str = "tnt_a") -> tuple[object, list[Stored]]:
    leaves = [Leaf(i, "follower_order", f"fo_{i}", "dispatch:ack", "dispatcher",
                   {"attempt": 1, "status": 200}, "2026-12-06T10:00:00Z", tenant)
              for i in range(n)]
    ev = chain_event(prev_hash=GENESIS_HASH, seq=1, event_id="ev1", entity=BATCH_ENTITY,
                     entity_id="b1", action=BATCH_ACTION, actor="dispatcher",
                     payload=seal(leaves)[1], ts="2026-12-06T10:00:00Z",
                     tenant_id=tenant)
    return ev, [Stored(lf.index, tenant, lf.entity_id, lf.action, lf.record())
                for lf in leaves]


def _problems(ev: object, stored: list[Stored]) -> list[str]:
    return [p for _, p in batches_problems([ev], {"ev1": stored})]  # type: ignore[list-item]


def test_untouched_records_verify_and_each_proof_holds() -> None:
    ev, stored = _batch()
    assert _problems(ev, stored) == []
    records = [s.record for s in stored]
    root = ev.payload["root"]  # type: ignore[attr-defined]
    assert ev.payload["actions"] == {"dispatch:ack": 5}  # type: ignore[attr-defined]
    for i, r in enumerate(records):
        assert proves(r, i, len(records), proof(i, records), root)
        assert not proves(records[(i + 1) % 5], i, 5, proof(i, records), root)


def test_a_changed_record_is_caught() -> None:
    ev, stored = _batch()
    d = json.loads(stored[2].record)
    d["payload"]["status"] = 500
    stored[2].record = json.dumps(d, sort_keys=True, separators=(",", ":"))
    assert any("do not match its Merkle root" in p for p in _problems(ev, stored))


def test_a_removed_record_is_caught() -> None:
    ev, stored = _batch()
    assert any("removed" in p for p in _problems(ev, stored[:-1]))
    assert any("removed" in p for p in _problems(ev, [stored[0], *stored[2:]]))


def test_swapped_records_are_caught() -> None:
    ev, stored = _batch()
    stored[0].record, stored[1].record = stored[1].record, stored[0].record
    stored[0].entity_id, stored[1].entity_id = stored[1].entity_id, stored[0].entity_id
    assert _problems(ev, stored)


def test_a_look_up_column_moved_to_another_child_is_caught() -> None:
    ev, stored = _batch()
    stored[1].entity_id = "fo_someone_else"
    assert any("look-up columns" in p for p in _problems(ev, stored))


def test_records_under_a_plain_event_are_caught() -> None:
    _, stored = _batch()
    plain = chain_event(prev_hash=GENESIS_HASH, seq=1, event_id="ev1", entity="vault",
                        entity_id="V", action="created", actor="a", payload={},
                        ts="2026-12-06T10:00:00Z", tenant_id="tnt_a")
    assert _problems(plain, stored) == ["event #1 is not a batch event but has records"]
