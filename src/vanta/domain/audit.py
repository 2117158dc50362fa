"""Audit events and their hash chain.

Each event's hash covers its canonical JSON and the previous event's hash, so altering,
removing or reordering any stored event breaks every hash after it.

Hash versions: version 1 (events written before migration 0008) covers the event id, seq,
entity, entity id, action, actor, payload, timestamp and previous hash. Version 2 (every
event since) covers the same plus the tenant the event is filed under and the version
number itself, so an event cannot be moved into another tenant's view, nor relabelled as
version 1, without its hash changing. Old events keep their version-1 hashes (re-hashing
them would erase the very evidence the chain exists for); along the chain the version never
goes down, so a version-2 event rewritten as version 1 is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS_HASH = "0" * 64
HASH_VERSION = 2  # what new events are hashed with
HASH_VERSIONS = (1, 2)


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
    tenant_id: str | None = None
    hash_v: int = 1


def canonical_json(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)


def event_hash(
    *, prev_hash: str, seq: int, event_id: str, entity: str, entity_id: str, action: str,
    actor: str, payload: Mapping[str, Any], ts: str, tenant_id: str | None = None,
    hash_v: int = 1,
) -> str:
    doc: dict[str, Any] = {
        "prev": prev_hash, "seq": seq, "id": event_id, "entity": entity,
        "entity_id": entity_id, "action": action, "actor": actor, "payload": payload, "ts": ts,
    }
    if hash_v == 2:
        doc.update(v=2, tenant=tenant_id)
    elif hash_v != 1:
        raise ValueError(f"unknown audit hash version {hash_v}")
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def hash_of(e: AuditEvent) -> str:
    """The hash ``e`` should carry, by its own version's rules."""
    return event_hash(prev_hash=e.prev_hash, seq=e.seq, event_id=e.event_id, entity=e.entity,
                      entity_id=e.entity_id, action=e.action, actor=e.actor,
                      payload=e.payload, ts=e.ts, tenant_id=e.tenant_id, hash_v=e.hash_v)


def chain_event(
    *, prev_hash: str, seq: int, event_id: str, entity: str, entity_id: str, action: str,
    actor: str, payload: Mapping[str, Any], ts: str, tenant_id: str | None = None,
    hash_v: int = HASH_VERSION,
) -> AuditEvent:
    h = event_hash(prev_hash=prev_hash, seq=seq, event_id=event_id, entity=entity,
                   entity_id=entity_id, action=action, actor=actor, payload=payload, ts=ts,
                   tenant_id=tenant_id, hash_v=hash_v)
    return AuditEvent(event_id, seq, entity, entity_id, action, actor, dict(payload), ts,
                      prev_hash, h, tenant_id, hash_v)


def first_problem(events: Iterable[AuditEvent], *, prev_hash: str = GENESIS_HASH,
                  first_seq: int = 1) -> tuple[int, str] | None:
    """The first event that does not verify and why, or None. The run must start at
    ``first_seq`` after ``prev_hash`` (the whole chain by default)."""
    prev, expected, version = prev_hash, first_seq, 1
    for e in events:
        if e.seq != expected:
            return e.seq, f"event #{e.seq} follows #{expected - 1}: an event is missing"
        if e.prev_hash != prev:
            return e.seq, f"event #{e.seq} does not link to the event before it"
        if e.hash_v not in HASH_VERSIONS:
            return e.seq, f"event #{e.seq} has unknown hash version {e.hash_v}"
        if e.hash_v < version:
            return e.seq, (f"event #{e.seq} is hashed with version {e.hash_v} after a "
                           f"version-{version} event (versions never go down)")
        if hash_of(e) != e.hash:
            return e.seq, f"event #{e.seq} does not match its hash"
        prev, expected, version = e.hash, expected + 1, e.hash_v
    return None


def verify_chain(events: Iterable[AuditEvent]) -> int | None:
    """Return the seq of the first event that does not verify, or None if all do."""
    problem = first_problem(events)
    return None if problem is None else problem[0]
