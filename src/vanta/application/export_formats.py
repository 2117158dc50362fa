"""What the exports write, byte for byte: object keys, canonical JSON lines and manifests,
the errors and results of an export, and how one day's run of the audit chain is cut and
verified. Pure: no store, no database (see :mod:`vanta.application.exports`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from vanta.application.ports.clock import iso
from vanta.application.ports.objectstore import ObjectRef
from vanta.application.ports.records_orders import ChildOrderRecord, FillRecord, ManagerOrderRecord
from vanta.domain.audit import GENESIS_HASH, HASH_VERSIONS, AuditEvent, canonical_json, hash_of
from vanta.domain.errors import DomainError

DLX_QUEUE = "mirror_dispatch_dlx"
AUDIT_FORMAT = "vanta.audit-export/1"
TRADE_LOG_FORMAT = "vanta.trade-log/1"
DLX_FORMAT = "vanta.dlx-archive/1"
JSONL = "application/x-ndjson"
JSON = "application/json"



class ExportError(DomainError):
    code = "export_failed"


class AuditChainBroken(ExportError):
    code = "audit_chain_broken"

    def __init__(self, seq: int) -> None:
        super().__init__(f"the audit chain is broken at event #{seq}; nothing was exported")
        self.seq = seq


class DayNotClosed(ExportError):
    code = "day_not_closed"


class ExportConflict(ExportError):
    """The object store already holds a different export under the same key."""

    code = "export_conflict"

    def __init__(self, message: str, *, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class ExportResult:
    kind: str  # audit | trade_log | dlx
    objects: tuple[ObjectRef, ...]
    count: int  # events, lines or dead letters written
    manifest: Mapping[str, Any] | None = None

    @property
    def created(self) -> bool:
        """False when every object was already stored with the same bytes (a re-run)."""
        return any(r.created for r in self.objects)


@dataclass(frozen=True)
class VerifyReport:
    day: date
    problems: tuple[str, ...]
    checked: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.problems


# -- keys -------------------------------------------------------------------------------------

def audit_key(day: date) -> str:
    return f"audit/{day:%Y/%m/%d}/events.jsonl"


def audit_manifest_key(day: date) -> str:
    return f"audit/{day:%Y/%m/%d}/manifest.json"


def trade_log_key(day: date) -> str:
    return f"trade_log/{day:%Y/%m/%d}/trade_log.jsonl"


def trade_log_manifest_key(day: date) -> str:
    return f"trade_log/{day:%Y/%m/%d}/manifest.json"


def dlx_key(tenant_id: str, at: datetime) -> str:
    return f"dlx/{tenant_id}/{at.astimezone(UTC):%Y%m%dT%H%M%S.%fZ}.jsonl"


# -- serialization ----------------------------------------------------------------------------

def plain(v: Any) -> Any:
    if isinstance(v, Decimal):
        return format(v, "f")
    if isinstance(v, datetime):
        return iso(v if v.tzinfo else v.replace(tzinfo=UTC))
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [plain(x) for x in v]
    return v


def jsonl(rows: Sequence[Mapping[str, Any]]) -> bytes:
    """One canonical JSON object per line: sorted keys, no spaces, UTF-8. Audit events go
    through as they are: this is the serialization their hashes cover."""
    return "".join(canonical_json(r) + "\n" for r in rows).encode()


def manifest_bytes(manifest: Mapping[str, Any]) -> bytes:
    return (json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n").encode()


def event_json(e: AuditEvent) -> dict[str, Any]:
    line = {"seq": e.seq, "event_id": e.event_id, "ts": e.ts, "entity": e.entity,
            "entity_id": e.entity_id, "action": e.action, "actor": e.actor,
            "payload": e.payload, "prev_hash": e.prev_hash, "hash": e.hash}
    if e.hash_v >= 2:  # version-1 lines stay as they were, so old days re-export identically
        line.update(tenant_id=e.tenant_id, hash_v=e.hash_v)
    return line


def event_from_json(d: Mapping[str, Any]) -> AuditEvent:
    return AuditEvent(str(d["event_id"]), int(d["seq"]), str(d["entity"]),
                      str(d["entity_id"]), str(d["action"]), str(d["actor"]),
                      dict(d["payload"]), str(d["ts"]), str(d["prev_hash"]), str(d["hash"]),
                      d.get("tenant_id"), int(d.get("hash_v", 1)))


def day_of(ts: str) -> date:
    try:
        return datetime.fromisoformat(ts).astimezone(UTC).date()
    except ValueError as e:
        raise ExportError(f"audit event timestamp {ts!r} is not ISO 8601") from e


# -- the chain, one day at a time -------------------------------------------------------------

@dataclass(frozen=True)
class Segment:
    events: list[AuditEvent]
    prev_hash: str  # the chain's hash just before the first event (or the day, if empty)

    @property
    def last_hash(self) -> str:
        return self.events[-1].hash if self.events else self.prev_hash


def day_segment(events: Sequence[AuditEvent], day: date) -> Segment:
    inside = [e for e in events if day_of(e.ts) == day]
    if inside:
        first = inside[0].seq
        if [e.seq for e in inside] != list(range(first, first + len(inside))):
            raise ExportError(
                f"the audit events of {day} are not a contiguous run of the chain (writers "
                "with disagreeing clocks?); a slice with gaps cannot be verified on its own",
                code="audit_day_not_contiguous")
        return Segment(inside, inside[0].prev_hash)
    before = [e for e in events if day_of(e.ts) < day]
    return Segment([], before[-1].hash if before else GENESIS_HASH)


def verify_segment(events: Sequence[AuditEvent], prev_hash: str) -> str | None:
    """Check a run of the chain that starts after ``prev_hash``: consecutive seqs, each event
    linked to the one before and hashing to its stored hash. Returns the first problem."""
    prev = prev_hash
    expected: int | None = None
    for e in events:
        if expected is not None and e.seq != expected:
            return f"event #{e.seq} follows #{expected - 1}: the run has a gap"
        if e.seq == 1 and prev != GENESIS_HASH:
            return "event #1 does not start from the genesis hash"
        if e.prev_hash != prev:
            return f"event #{e.seq} does not link to the event before it"
        if e.hash_v not in HASH_VERSIONS or hash_of(e) != e.hash:
            return f"event #{e.seq} does not match its hash"
        prev, expected = e.hash, e.seq + 1
    return None


def trade_line(audit_seq: int, child: ChildOrderRecord, order: ManagerOrderRecord | None,
                fills: Sequence[FillRecord]) -> dict[str, Any]:
    return {
        "audit_seq": audit_seq, "tenant_id": child.tenant_id, "vault_id": child.vault_id,
        "mo_id": child.mo_id,
        "manager_order_id": order.client_order_id if order else None,
        "fo_id": child.fo_id, "follower_id": child.follower_id,
        "symbol": child.symbol, "venue": child.venue, "side": child.side.value,
        "qty": child.qty, "cap_applied": child.cap_applied,
        "state": child.state.value, "skip_reason": child.skip_reason,
        "created_at": child.created_at, "filled_qty": child.filled_qty,
        "avg_fill_price": child.avg_fill_price,
        "fills": [{"trade_id": f.trade_id, "qty": f.qty, "price": f.price,
                   "ts": f.ts} for f in fills],
    }
