"""Audit records settled a batch at a time: one chained event per batch, with a Merkle root.

A batch of dispatch answers (hundreds of children) is recorded as one chained audit event
(``dispatch:batch``) whose payload carries the RFC 9162 root over the batch's per-child
records (the leaves). Each leaf is the canonical JSON of one child's record, so:

* changing, dropping, adding or reordering a leaf changes the root, which the chained event
  carries, which the hash chain covers: tamper evidence is as strong as one event per child;
* a child's record can be shown on its own with an inclusion proof (the audit path) against
  the root of an event whose hash the chain, and the signed anchors, vouch for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from vanta.domain import merkle
from vanta.domain.audit import AuditEvent, canonical_json, chain_event
from vanta.domain.ids import new_id

BATCH_ENTITY = "audit_batch"
BATCH_ACTION = "dispatch:batch"
LEAF_VERSION = 1


@dataclass(frozen=True, slots=True)
class Leaf:
    """One child's record inside a batch event (``index`` is its place in the tree)."""

    index: int
    entity: str
    entity_id: str
    action: str
    actor: str
    payload: Mapping[str, Any]
    ts: str
    tenant_id: str | None

    def record(self) -> str:
        """The exact text that is hashed (and stored): canonical JSON of the record."""
        return canonical_json({"v": LEAF_VERSION, "entity": self.entity,
                               "entity_id": self.entity_id, "action": self.action,
                               "actor": self.actor, "payload": self.payload, "ts": self.ts,
                               "tenant": self.tenant_id})


def leaf_from_record(index: int, record: str) -> Leaf:
    """A stored leaf read back from its record text (the text is what the root covers)."""
    d = json.loads(record)
    return Leaf(index, d["entity"], d["entity_id"], d["action"], d["actor"], d["payload"],
                d["ts"], d["tenant"])


def leaves_by_tenant(records: Iterable[Mapping[str, Any]], *, actor: str, ts: str
                     ) -> dict[str | None, list[Leaf]]:
    """Per-child records (entity, entity_id, action, payload, tenant_id) as the leaves of one
    batch event per tenant, numbered in their order."""
    out: dict[str | None, list[Leaf]] = {}
    for r in records:
        group = out.setdefault(r["tenant_id"], [])
        group.append(Leaf(len(group), r["entity"], r["entity_id"], r["action"], actor,
                          r["payload"], ts, r["tenant_id"]))
    return out


def seal(leaves: Sequence[Leaf]) -> tuple[list[str], dict[str, Any]]:
    """The leaves' record texts (each computed once: it is the costly part) and the chained
    event's payload: the Merkle root over them, the size and a count per action."""
    records = [lf.record() for lf in leaves]
    actions: dict[str, int] = {}
    for lf in leaves:
        actions[lf.action] = actions.get(lf.action, 0) + 1
    top = merkle.root([merkle.leaf_hash(r.encode()) for r in records])
    return records, {"merkle": merkle.ALGORITHM, "root": top.hex(), "size": len(leaves),
                     "actions": dict(sorted(actions.items()))}


@dataclass(frozen=True, slots=True)
class SealedBatch:
    """A chained batch event and the records under its root, ready to be stored."""

    event: AuditEvent
    leaves: list[Leaf]
    records: list[str]  # each leaf's hashed text, in leaf order

    def leaf_rows(self) -> list[dict[str, Any]]:
        """The stored leaves: the text, and the columns copied from it for look-ups."""
        return [{"event_id": self.event.event_id, "idx": lf.index, "tenant_id": lf.tenant_id,
                 "entity_id": lf.entity_id, "action": lf.action, "record": text}
                for lf, text in zip(self.leaves, self.records, strict=True)]


def chain_batches(records: Iterable[Mapping[str, Any]], *, actor: str, ts: str,
                  prev_hash: str, seq: int) -> list[SealedBatch]:
    """One chained batch event per tenant among ``records``, linked after the chain's head
    (``seq``, ``prev_hash``), in the order the tenants first appear."""
    out: list[SealedBatch] = []
    for tenant, leaves in leaves_by_tenant(records, actor=actor, ts=ts).items():
        texts, payload = seal(leaves)
        seq += 1
        ev = chain_event(prev_hash=prev_hash, seq=seq, event_id=new_id(), entity=BATCH_ENTITY,
                         entity_id=new_id(), action=BATCH_ACTION, actor=actor,
                         payload=payload, ts=ts, tenant_id=tenant)
        prev_hash = ev.hash
        out.append(SealedBatch(ev, leaves, texts))
    return out


def batch_problem(event: AuditEvent, records: Sequence[str]) -> str | None:
    """Why the stored leaf ``records`` (in index order) do not match the batch ``event``, or
    None when they do."""
    p = event.payload
    if p.get("merkle") != merkle.ALGORITHM:
        return f"event #{event.seq} names an unknown Merkle rule {p.get('merkle')!r}"
    if p.get("size") != len(records):
        return (f"event #{event.seq} covers {p.get('size')} records but {len(records)} are "
                "stored: a record was added or removed")
    got = merkle.root([merkle.leaf_hash(r.encode()) for r in records]).hex()
    if got != p.get("root"):
        return f"the records of event #{event.seq} do not match its Merkle root: one was altered"
    return None


def proof(index: int, records: Sequence[str]) -> list[str]:
    """The audit path (hex, bottom-up) of leaf ``index`` among the batch's ``records``."""
    return [h.hex() for h in merkle.inclusion_path(
        index, [merkle.leaf_hash(r.encode()) for r in records])]


def proofs(records: Sequence[str]) -> list[list[str]]:
    """The audit path (hex, bottom-up) of every one of the batch's ``records``, in order."""
    paths = merkle.inclusion_paths([merkle.leaf_hash(r.encode()) for r in records])
    return [[h.hex() for h in p] for p in paths]


def proves(record: str, index: int, size: int, path: Sequence[str], root_hex: str) -> bool:
    """Whether ``path`` proves ``record`` is leaf ``index`` of the tree with ``root_hex``."""
    try:
        hashes = [bytes.fromhex(h) for h in path]
    except ValueError:
        return False
    got = merkle.root_from_path(merkle.leaf_hash(record.encode()), index, size, hashes)
    return got is not None and got.hex() == root_hex


class StoredLeaf(Protocol):
    """A leaf as the database holds it: the record, and columns copied from it to look it up."""

    @property
    def idx(self) -> int: ...
    @property
    def tenant_id(self) -> str | None: ...
    @property
    def entity_id(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def record(self) -> str: ...


def stored_problem(event: AuditEvent, leaves: Sequence[StoredLeaf]) -> str | None:
    """Why a batch event's stored leaves (in ``idx`` order) do not verify, or None."""
    if [lf.idx for lf in leaves] != list(range(len(leaves))):
        return f"the records of event #{event.seq} are not numbered 0..n-1: one was removed"
    for lf in leaves:
        try:
            leaf = leaf_from_record(lf.idx, lf.record)
        except (ValueError, KeyError, TypeError):
            return f"record {lf.idx} of event #{event.seq} is not a valid record"
        if (leaf.entity_id, leaf.action, leaf.tenant_id) != (lf.entity_id, lf.action,
                                                             lf.tenant_id):
            return (f"record {lf.idx} of event #{event.seq} is filed under other columns "
                    "than it says: the look-up columns were altered")
        if leaf.tenant_id != event.tenant_id:
            return f"record {lf.idx} of event #{event.seq} names another tenant"
    return batch_problem(event, [lf.record for lf in leaves])


def batches_problems(events: Iterable[AuditEvent],
                     leaves: Mapping[str, Sequence[StoredLeaf]]) -> list[tuple[int, str]]:
    """Every batch event whose records do not verify, and records stored under an event
    that is not a batch event."""
    out: list[tuple[int, str]] = []
    for e in events:
        if e.action != BATCH_ACTION:
            if e.event_id in leaves:
                out.append((e.seq, f"event #{e.seq} is not a batch event but has records"))
            continue
        problem = stored_problem(e, leaves.get(e.event_id, ()))
        if problem is not None:
            out.append((e.seq, problem))
    return out
