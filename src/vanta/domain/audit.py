"""Audit events and their hash chain.

Each event's hash covers its canonical JSON and the previous event's hash, so altering,
removing or reordering any stored event breaks every hash after it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64


@dataclass(frozen=True, slots=True)
class AuditEvent:
    event_id: str
    seq: int
    entity: str
    entity_id: str
    action: str
    actor: str
    payload: Mapping[str, Any]
    ts: str
    prev_hash: str
    hash: str


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def event_hash(
    *, prev_hash: str, seq: int, event_id: str, entity: str, entity_id: str, action: str,
    actor: str, payload: Mapping[str, Any], ts: str,
) -> str:
    body = canonical_json({
        "prev": prev_hash, "seq": seq, "id": event_id, "entity": entity,
        "entity_id": entity_id, "action": action, "actor": actor, "payload": payload, "ts": ts,
    })
    return hashlib.sha256(body.encode()).hexdigest()


def chain_event(
    *, prev_hash: str, seq: int, event_id: str, entity: str, entity_id: str, action: str,
    actor: str, payload: Mapping[str, Any], ts: str,
) -> AuditEvent:
    h = event_hash(prev_hash=prev_hash, seq=seq, event_id=event_id, entity=entity,
                   entity_id=entity_id, action=action, actor=actor, payload=payload, ts=ts)
    return AuditEvent(event_id, seq, entity, entity_id, action, actor, dict(payload), ts,
                      prev_hash, h)


def verify_chain(events: Iterable[AuditEvent]) -> int | None:
    """Return the seq of the first event that does not verify, or None if all do."""
    prev = GENESIS_HASH
    expected_seq = 1
    for e in events:
        if e.seq != expected_seq or e.prev_hash != prev:
            return e.seq
        h = event_hash(prev_hash=e.prev_hash, seq=e.seq, event_id=e.event_id, entity=e.entity,
                       entity_id=e.entity_id, action=e.action, actor=e.actor,
                       payload=e.payload, ts=e.ts)
        if h != e.hash:
            return e.seq
        prev, expected_seq = e.hash, expected_seq + 1
    return None
