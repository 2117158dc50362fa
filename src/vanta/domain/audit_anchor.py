"""Anchors of the audit chain: the head's seq and hash, signed and kept outside the database.

The chain alone cannot show that its tail was cut off or that it was rewritten consistently
from some event on (every hash recomputed): whoever can write the tables can do either. The
recorded head row catches a deleted last event; an anchor (a signed statement "event #N had
hash H", written under an immutable key of the object store) catches the rest, up to the
newest anchor: any event at or before it that is missing or has another hash breaks it.

Pure: signing and verifying the statement is the caller's (``application.ports.signing``).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vanta.domain.audit import GENESIS_HASH, AuditEvent, canonical_json, first_problem
from vanta.domain.audit_batch import StoredLeaf, batches_problems

ANCHOR_FORMAT = "vanta.audit-anchor/1"
ANCHOR_PREFIX = "audit/anchors/"


class AnchorInvalid(ValueError):
    """An anchor document that cannot be read, or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Anchor:
    seq: int
    hash: str
    anchored_at: str
    key_id: str

    def statement(self) -> bytes:
        """The exact bytes that are signed."""
        return canonical_json({"format": ANCHOR_FORMAT, "seq": self.seq, "hash": self.hash,
                               "anchored_at": self.anchored_at,
                               "key_id": self.key_id}).encode()

    @property
    def key(self) -> str:
        return anchor_key(self.seq)


def anchor_key(seq: int) -> str:
    # zero-padded so the store's sorted listing is in seq order: the last key is the newest
    return f"{ANCHOR_PREFIX}{seq:020d}.json"


def anchor_document(anchor: Anchor, signature: bytes) -> bytes:
    return canonical_json({"statement": json.loads(anchor.statement()),
                           "signature": base64.b64encode(signature).decode()}).encode()


def parse_anchor_document(data: bytes) -> tuple[Anchor, bytes]:
    """The anchor and its signature; the caller checks the signature over ``statement()``."""
    try:
        doc = json.loads(data)
        st: Mapping[str, Any] = doc["statement"]
        if st.get("format") != ANCHOR_FORMAT:
            raise AnchorInvalid(f"unknown anchor format {st.get('format')!r}")
        anchor = Anchor(int(st["seq"]), str(st["hash"]), str(st["anchored_at"]),
                        str(st["key_id"]))
        return anchor, base64.b64decode(doc["signature"], validate=True)
    except AnchorInvalid:
        raise
    except (ValueError, KeyError, TypeError) as e:
        raise AnchorInvalid(f"unreadable anchor document: {e}") from None


@dataclass(frozen=True, slots=True)
class ChainVerdict:
    """What verification found: ``problems`` empty means intact."""

    count: int
    problems: tuple[str, ...]
    bad_seq: int | None = None
    anchor: Anchor | None = None

    @property
    def ok(self) -> bool:
        return not self.problems


def judge_chain(events: Sequence[AuditEvent], *, head: tuple[int, str] | None,
                anchor: Anchor | None,
                leaves: Mapping[str, Sequence[StoredLeaf]] | None = None) -> ChainVerdict:
    """The whole chain (in seq order) against itself, the recorded head row and an anchor;
    with ``leaves`` (by event id), every batch event's records against its Merkle root."""
    problems: list[str] = []
    bad: int | None = None
    found = first_problem(events)
    if found is not None:
        bad = found[0]
        problems.append(found[1])
    if leaves is not None:
        for seq, why in batches_problems(events, leaves):
            problems.append(why)
            bad = seq if bad is None else min(bad, seq)
    last = (events[-1].seq, events[-1].hash) if events else (0, GENESIS_HASH)
    if head is not None and head != last:
        problems.append(f"the chain ends at event #{last[0]} but the recorded head is event "
                        f"#{head[0]} (hash {head[1][:16]}…): events were removed or the head "
                        "row altered")
        bad = bad if bad is not None else min(head[0], last[0] + 1)
    if head is None and events:
        problems.append("the chain has events but no recorded head row")
    if anchor is not None:
        problem = _against_anchor(events, anchor)
        if problem is not None:
            problems.append(problem)
            bad = bad if bad is not None else min(anchor.seq, len(events) + 1)
    return ChainVerdict(len(events), tuple(problems), bad, anchor)


def _against_anchor(events: Sequence[AuditEvent], anchor: Anchor) -> str | None:
    if anchor.seq == 0:
        return None
    at = next((e for e in events if e.seq == anchor.seq), None)
    if at is None:
        return (f"anchor {anchor.key} records event #{anchor.seq}, which is missing: "
                f"the chain was cut back to {len(events)} events")
    if at.hash != anchor.hash:
        return (f"event #{anchor.seq} has hash {at.hash[:16]}… but anchor {anchor.key} "
                f"recorded {anchor.hash[:16]}…: the history up to it was rewritten")
    return None
