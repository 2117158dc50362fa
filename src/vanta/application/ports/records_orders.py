"""Typed records the order, delivery and audit repositories return.

Each record has one constructor from a stored row (``from_row``), used by the SQL adapter
and the in-memory fake alike, so the two cannot hand the application different shapes.
Construction is positional and converts only the enum columns: child orders and outbox rows
are built per message on the dispatch path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from vanta.domain.audit import AuditEvent
from vanta.domain.audit_batch import Leaf, leaf_from_record
from vanta.domain.merkle import leaf_hash
from vanta.domain.orders import ChildOrderState, ManagerOrderState, Side, TimeInForce

# Value -> member tables: a dict look-up is several times cheaper than calling the enum
# (``Side("buy")``), and the dispatch path builds a record per message. An unknown value
# still fails loudly (KeyError), as the enum call would.
_SIDE = {m.value: m for m in Side}
_TIF = {m.value: m for m in TimeInForce}
_MO_STATE = {m.value: m for m in ManagerOrderState}
_FO_STATE = {m.value: m for m in ChildOrderState}

__all__ = [
    "AttemptRecord",
    "AuditEventRecord",
    "ChildOrderRecord",
    "FillRecord",
    "ManagerOrderRecord",
    "OutboxRecord",
]


@dataclass(frozen=True, slots=True)
class ManagerOrderRecord:
    mo_id: str
    tenant_id: str
    vault_id: str
    client_order_id: str
    source: str
    symbol: str
    venue: str
    side: Side
    qty: Decimal
    tif: TimeInForce
    ref_price: Decimal | None
    closes_position: bool
    meta: Mapping[str, Any]
    # Every follower's sizing inputs at expansion; None where the read leaves it out.
    snapshot: Mapping[str, Any] | None
    state: ManagerOrderState
    created_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["mo_id"], r["tenant_id"], r["vault_id"], r["client_order_id"],
                   r["source"], r["symbol"], r["venue"], _SIDE[r["side"]], r["qty"],
                   _TIF[r["tif"]], r["ref_price"], bool(r["closes_position"]),
                   r["meta"], r.get("snapshot"), _MO_STATE[r["state"]],
                   r["created_at"])


@dataclass(frozen=True, slots=True)
class ChildOrderRecord:
    fo_id: str
    mo_id: str
    follower_id: str
    tenant_id: str
    vault_id: str
    symbol: str
    venue: str
    side: Side
    qty: Decimal
    cap_applied: bool
    state: ChildOrderState
    skip_reason: str | None
    broker_order_ref: str | None
    dispatch_attempts: int
    last_error: str | None
    # The sizing record; None where the read leaves it out (delivery never reads it).
    audit: Mapping[str, Any] | None
    created_at: datetime
    updated_at: datetime
    filled_qty: Decimal
    avg_fill_price: Decimal | None
    dead_lettered_at: datetime | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["fo_id"], r["mo_id"], r["follower_id"], r["tenant_id"], r["vault_id"],
                   r["symbol"], r["venue"], _SIDE[r["side"]], r["qty"], bool(r["cap_applied"]),
                   _FO_STATE[r["state"]], r["skip_reason"], r["broker_order_ref"],
                   int(r["dispatch_attempts"]), r["last_error"], r.get("audit"),
                   r["created_at"], r["updated_at"], r["filled_qty"], r["avg_fill_price"],
                   r["dead_lettered_at"])


@dataclass(frozen=True, slots=True)
class FillRecord:
    trade_id: str
    fo_id: str
    qty: Decimal
    price: Decimal
    ts: datetime
    recorded_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["trade_id"], r["fo_id"], r["qty"], r["price"], r["ts"], r["recorded_at"])


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    id: int
    topic: str
    key: str
    payload: Mapping[str, Any]
    created_at: datetime
    available_at: datetime
    locked_until: datetime | None
    attempts: int
    done_at: datetime | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(int(r["id"]), r["topic"], r["key"], r["payload"], r["created_at"],
                   r["available_at"], r["locked_until"], int(r["attempts"]), r["done_at"])


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One delivery attempt of a child order; ``outcome`` is ``in_flight`` until answered."""

    id: int
    fo_id: str
    attempt_no: int
    started_at: datetime
    status_code: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    outcome: str

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(int(r["id"]), r["fo_id"], int(r["attempt_no"]), r["started_at"],
                   r["status_code"], int(r["latency_ms"]), r["response_excerpt"], r["error"],
                   r["outcome"])


@dataclass(frozen=True, slots=True)
class AuditEventRecord:
    """A stored audit event with its tenant (the domain's ``AuditEvent`` is the chained
    event alone, without the tenant the log files it under)."""

    event_id: str
    seq: int
    tenant_id: str | None
    entity: str
    entity_id: str
    action: str
    actor: str
    payload: Mapping[str, Any]
    ts: str
    prev_hash: str
    hash: str
    hash_v: int = 1  # which rules the hash follows (see vanta.domain.audit)

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> Self:
        return cls(r["event_id"], int(r["seq"]), r["tenant_id"], r["entity"], r["entity_id"],
                   r["action"], r["actor"], r["payload"], r["ts"], r["prev_hash"], r["hash"],
                   int(r.get("hash_v") or 1))

    def event(self) -> AuditEvent:
        """The chained event, as ``AuditRepo.all`` returns it."""
        return AuditEvent(self.event_id, self.seq, self.entity, self.entity_id, self.action,
                          self.actor, self.payload, self.ts, self.prev_hash, self.hash,
                          self.tenant_id, self.hash_v)


@dataclass(frozen=True, slots=True)
class AuditLeafRecord:
    """One child's record under a batch audit event (see ``vanta.domain.audit_batch``):
    ``seq`` and ``event_id`` are the batch event's, ``idx`` the record's place under its
    Merkle root, ``record`` the exact text the root covers."""

    event_id: str
    seq: int
    idx: int
    tenant_id: str | None
    entity_id: str
    action: str
    record: str

    def leaf(self) -> Leaf:
        return leaf_from_record(self.idx, self.record)

    def leaf_hash(self) -> str:
        """The hash the Merkle root covers: of the stored text itself."""
        return leaf_hash(self.record.encode()).hex()
