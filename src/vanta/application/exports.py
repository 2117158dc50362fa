"""Exports to the object store: the audit log, the daily trade log, dead-letter archives.

Objects are immutable (see ``vanta.application.ports.objectstore``), so every export of a day is
deterministic: the same database gives byte-identical objects (rows in a fixed order, JSON
with sorted keys and no insignificant whitespace, decimals in plain notation, timestamps in
one format), and running an export again is a no-op. A day is exported once it is over (plus
a grace period, ``settle``, for writers whose clocks lag), never while it can still change.

Layout::

    audit/YYYY/MM/DD/events.jsonl       the day's audit events, in chain order (a batch
                                        event's line also holds its ``records``, the leaves
                                        under its Merkle root)
    audit/YYYY/MM/DD/manifest.json      first/last seq, count, the hash before the first event
                                        (prev_hash) and after the last (last_hash), sha256/size
    trade_log/YYYY/MM/DD/trade_log.jsonl  one line per child order created that day
    trade_log/YYYY/MM/DD/manifest.json
    dlx/<tenant>/<YYYYMMDDTHHMMSS.ffffffZ>.jsonl  a snapshot of the tenant's dead letters

Which day an audit event belongs to is its ``ts`` (UTC). The day's events must be a
contiguous run of the chain (true when writers' clocks agree); the export refuses otherwise
rather than writing a slice that could not be verified on its own. A child order belongs to
the day on which the audit log recorded its creation (its ``created:*`` event), and each
trade-log line names that event's ``audit_seq``, so the two exports cross-check.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from vanta.application.export_formats import (
    AUDIT_FORMAT,
    DLX_FORMAT,
    DLX_QUEUE,
    JSON,
    JSONL,
    TRADE_LOG_FORMAT,
    AuditChainBroken,
    DayNotClosed,
    ExportConflict,
    ExportError,
    ExportResult,
    VerifyReport,
    audit_key,
    audit_manifest_key,
    day_of,
    day_segment,
    dlx_key,
    event_from_json,
    event_json,
    jsonl,
    manifest_bytes,
    plain,
    trade_line,
    trade_log_key,
    trade_log_manifest_key,
    verify_segment,
)
from vanta.application.ports.clock import Clock, iso, utcnow
from vanta.application.ports.objectstore import (
    InvalidKey,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectRef,
    ObjectStore,
    sha256_hex,
    validate_key,
)
from vanta.application.ports.records_orders import ManagerOrderRecord
from vanta.application.ports.uow import UowFactory
from vanta.domain.audit import AuditEvent, verify_chain
from vanta.domain.audit_batch import BATCH_ACTION, batch_problem, batches_problems
from vanta.domain.errors import NotFound

__all__ = [
    "DLX_QUEUE",
    "AuditChainBroken",
    "DayNotClosed",
    "ExportConflict",
    "ExportError",
    "ExportResult",
    "Exporter",
    "VerifyReport",
    "audit_key",
    "audit_manifest_key",
    "dlx_key",
    "trade_log_key",
    "trade_log_manifest_key",
    "verify_segment",
]

DEFAULT_SETTLE = timedelta(minutes=5)
DLX_LIMIT = 1_000_000


# -- the exporter -----------------------------------------------------------------------------

class Exporter:
    """``Exporter(uow_factory, store)``; every method is async and safe to run again."""

    def __init__(self, uow_factory: UowFactory, store: ObjectStore, *,
                 clock: Clock = utcnow, settle: timedelta = DEFAULT_SETTLE) -> None:
        self._uow = uow_factory
        self._store = store
        self._clock = clock
        self._settle = settle

    def _require_closed(self, day: date) -> None:
        closes = datetime.combine(day + timedelta(days=1), time(), UTC) + self._settle
        if self._clock() < closes:
            raise DayNotClosed(
                f"{day} can be exported from {iso(closes)} on: exports are immutable, so a "
                "day is exported once it is over")

    async def _put(self, key: str, data: bytes, content_type: str,
                   metadata: Mapping[str, str], hint: str) -> ObjectRef:
        try:
            return await self._store.put(key, data, content_type=content_type,
                                         metadata=metadata)
        except ObjectExists as e:
            raise ExportConflict(f"{key} already holds a different export ({hint}); it is "
                                 "immutable and was left as it is", key=key) from e
        except ObjectCorrupted as e:
            raise ExportConflict(f"{key} is stored but no longer matches its recorded "
                                 "sha256 (altered in the store?); it was left as it is",
                                 key=key) from e

    async def _load_chain(self) -> list[AuditEvent]:
        async with self._uow() as uow:
            return await uow.audit.all()

    async def export_audit(self, day: date) -> ExportResult:
        """Verify the whole chain, then write the day's events and their manifest."""
        self._require_closed(day)
        events = await self._load_chain()
        bad = verify_chain(events)
        if bad is not None:
            raise AuditChainBroken(bad)
        seg = day_segment(events, day)
        async with self._uow() as uow:  # a batch event's records travel with it
            leaves = await uow.audit.leaves_of([e.event_id for e in seg.events
                                                if e.action == BATCH_ACTION])
        broken = batches_problems(seg.events, leaves)
        if broken:
            raise AuditChainBroken(broken[0][0])
        body = jsonl([{**event_json(e), "records": [lf.record for lf in leaves[e.event_id]]}
                      if e.event_id in leaves else event_json(e) for e in seg.events])
        meta = {"kind": "audit", "date": day.isoformat()}
        hint = "the database's audit events for that day differ from the stored ones"
        ref = await self._put(audit_key(day), body, JSONL, meta, hint)
        manifest = {
            "format": AUDIT_FORMAT, "date": day.isoformat(), "object": ref.key,
            "sha256": ref.sha256, "size": ref.size, "event_count": len(seg.events),
            "first_seq": seg.events[0].seq if seg.events else None,
            "last_seq": seg.events[-1].seq if seg.events else None,
            "prev_hash": seg.prev_hash, "last_hash": seg.last_hash,
        }
        mref = await self._put(audit_manifest_key(day), manifest_bytes(manifest), JSON, meta,
                               hint)
        return ExportResult("audit", (ref, mref), len(seg.events), manifest)

    async def rollup_trade_log(self, day: date) -> ExportResult:
        """One line per child order created on ``day`` (all tenants), with its fills."""
        self._require_closed(day)
        events = await self._load_chain()
        created: dict[str, AuditEvent] = {}
        for e in events:
            if (e.entity == "follower_order" and e.action.startswith("created:")
                    and e.entity_id not in created and day_of(e.ts) == day):
                created[e.entity_id] = e
        lines: list[dict[str, Any]] = []
        orders: dict[str, ManagerOrderRecord | None] = {}
        async with self._uow() as uow:
            for fo_id, e in created.items():
                child = await uow.child_orders.get_unscoped(fo_id)
                if child is None:
                    raise ExportError(f"child order {fo_id}, created by audit event #{e.seq}, "
                                      "is missing from the database")
                mo_id = child.mo_id
                if mo_id not in orders:
                    orders[mo_id] = await uow.manager_orders.get_unscoped(mo_id)
                fills = await uow.fills.for_child(fo_id)
                lines.append(trade_line(e.seq, child, orders[mo_id], fills))
        body = jsonl([plain(x) for x in lines])
        meta = {"kind": "trade-log", "date": day.isoformat()}
        hint = "child states or fills changed since the first rollup"
        ref = await self._put(trade_log_key(day), body, JSONL, meta, hint)
        manifest = {
            "format": TRADE_LOG_FORMAT, "date": day.isoformat(), "object": ref.key,
            "sha256": ref.sha256, "size": ref.size, "line_count": len(lines),
            "first_audit_seq": lines[0]["audit_seq"] if lines else None,
            "last_audit_seq": lines[-1]["audit_seq"] if lines else None,
        }
        mref = await self._put(trade_log_manifest_key(day), manifest_bytes(manifest), JSON,
                               meta, hint)
        return ExportResult("trade_log", (ref, mref), len(lines), manifest)

    async def archive_dead_letters(self, tenant_id: str) -> ExportResult:
        """A snapshot of the tenant's current dead letters (queue ``mirror_dispatch_dlx``)."""
        now = self._clock()
        try:
            key = validate_key(dlx_key(tenant_id, now))
        except InvalidKey as e:
            raise ExportError(f"tenant id {tenant_id!r} cannot name an object",
                              code="invalid_tenant_id") from e
        async with self._uow() as uow:
            if await uow.tenants.get(tenant_id) is None:
                raise NotFound(f"tenant {tenant_id} not found", code="tenant_not_found")
            rows = await uow.child_orders.dead_letters(tenant_id, since=None, limit=DLX_LIMIT)
        lines = [{
            "queue": DLX_QUEUE, "tenant_id": tenant_id, "fo_id": r.fo_id,
            "mo_id": r.mo_id, "vault_id": r.vault_id, "follower_id": r.follower_id,
            "symbol": r.symbol, "venue": r.venue, "side": r.side.value, "qty": r.qty,
            "dispatch_attempts": r.dispatch_attempts, "last_error": r.last_error,
            "created_at": r.created_at, "dead_lettered_at": r.dead_lettered_at,
        } for r in rows]
        meta = {"kind": "dlx", "tenant": tenant_id, "count": str(len(lines)),
                "format": DLX_FORMAT}
        ref = await self._put(key, jsonl([plain(x) for x in lines]), JSONL, meta,
                              "two archives in the same microsecond")
        return ExportResult("dlx", (ref,), len(lines))

    # -- verification ---------------------------------------------------------------------

    async def _read_json(self, key: str, problems: list[str]) -> dict[str, Any] | None:
        try:
            doc = json.loads(await self._store.get(key))
        except ObjectNotFound:
            return None
        except ObjectCorrupted as e:
            problems.append(f"{key}: {e}")
            return None
        except ValueError:
            problems.append(f"{key}: not valid JSON")
            return None
        if not isinstance(doc, dict):
            problems.append(f"{key}: not a JSON object")
            return None
        return doc

    async def _read_object(self, manifest: Mapping[str, Any], key: str,
                           problems: list[str]) -> bytes | None:
        try:
            data = await self._store.get(key)
        except (ObjectNotFound, ObjectCorrupted) as e:
            problems.append(f"{key}: {e}")
            return None
        if sha256_hex(data) != manifest.get("sha256"):
            problems.append(f"{key}: sha256 differs from the manifest's")
            return None
        if len(data) != manifest.get("size"):
            problems.append(f"{key}: size differs from the manifest's")
        return data

    async def verify_export(self, day: date, *, check_database: bool = True) -> VerifyReport:
        """Re-read the day's objects: each file against its manifest's sha256 and size, the
        audit events as a chain from the manifest's ``prev_hash`` to its ``last_hash``, the
        link to the neighbouring days' manifests, the trade log's lines against the audit
        events that created them, and (``check_database``) the stored events against the
        database's, whose whole chain is verified again too."""
        problems: list[str] = []
        checked: list[str] = []
        audit_events = await self._verify_audit(day, problems, checked)
        await self._verify_trade_log(day, audit_events, problems, checked)
        if check_database and audit_events is not None:
            await self._verify_against_database(day, audit_events, problems, checked)
        return VerifyReport(day, tuple(problems), tuple(checked))

    async def _verify_audit(self, day: date, problems: list[str],
                            checked: list[str]) -> list[AuditEvent] | None:
        mkey = audit_manifest_key(day)
        manifest = await self._read_json(mkey, problems)
        if manifest is None:
            if not any(p.startswith(mkey) for p in problems):
                problems.append(f"{mkey}: no audit export for {day}")
            return None
        if manifest.get("format") != AUDIT_FORMAT or manifest.get("date") != day.isoformat():
            problems.append(f"{mkey}: not an audit manifest for {day}")
            return None
        data = await self._read_object(manifest, audit_key(day), problems)
        if data is None:
            return None
        try:
            lines = [json.loads(line) for line in data.splitlines()]
            events = [event_from_json(line) for line in lines]
            records = {line["event_id"]: [str(r) for r in line["records"]]
                       for line in lines if "records" in line}
        except (ValueError, KeyError, TypeError) as e:
            problems.append(f"{audit_key(day)}: unreadable line ({e})")
            return None
        for ev in events:
            if ev.action == BATCH_ACTION:
                why = batch_problem(ev, records.get(ev.event_id, []))
                if why is not None:
                    problems.append(f"{audit_key(day)}: {why}")
        seqs = (events[0].seq, events[-1].seq) if events else (None, None)
        if (len(events), *seqs) != (manifest.get("event_count"), manifest.get("first_seq"),
                                    manifest.get("last_seq")):
            problems.append(f"{audit_key(day)}: count or seq range differs from the manifest")
        bad = verify_segment(events, str(manifest.get("prev_hash")))
        if bad is not None:
            problems.append(f"{audit_key(day)}: {bad}")
        last = events[-1].hash if events else manifest.get("prev_hash")
        if last != manifest.get("last_hash"):
            problems.append(f"{mkey}: last_hash is not the hash of the last event")
        for other, mine, theirs in ((day - timedelta(days=1), "prev_hash", "last_hash"),
                                    (day + timedelta(days=1), "last_hash", "prev_hash")):
            neighbour = await self._read_json(audit_manifest_key(other), problems)
            if neighbour is not None and neighbour.get(theirs) != manifest.get(mine):
                problems.append(f"{mkey}: {mine} does not meet the {theirs} of {other}'s export")
        checked.append(f"audit: {len(events)} events, chain "
                       f"{str(manifest.get('prev_hash'))[:12]}..{str(last)[:12]}")
        return events

    async def _verify_trade_log(self, day: date, audit_events: list[AuditEvent] | None,
                                problems: list[str], checked: list[str]) -> None:
        mkey = trade_log_manifest_key(day)
        manifest = await self._read_json(mkey, problems)
        if manifest is None:
            if not any(p.startswith(mkey) for p in problems):
                checked.append("trade log: not exported")
            return
        data = await self._read_object(manifest, trade_log_key(day), problems)
        if data is None:
            return
        try:
            lines = [json.loads(line) for line in data.splitlines()]
        except ValueError:
            problems.append(f"{trade_log_key(day)}: unreadable line")
            return
        if len(lines) != manifest.get("line_count"):
            problems.append(f"{trade_log_key(day)}: line count differs from the manifest")
        if audit_events is not None:
            by_seq = {e.seq: e for e in audit_events}
            for line in lines:
                e = by_seq.get(line.get("audit_seq"))
                if e is None or e.entity_id != line.get("fo_id") \
                        or not e.action.startswith("created:"):
                    problems.append(f"{trade_log_key(day)}: {line.get('fo_id')} is not "
                                    "created by the audit event it names")
                    break
        checked.append(f"trade log: {len(lines)} child orders")

    async def _verify_against_database(self, day: date, exported: list[AuditEvent],
                                       problems: list[str], checked: list[str]) -> None:
        events = await self._load_chain()
        bad = verify_chain(events)
        if bad is not None:
            problems.append(f"database: the audit chain is broken at event #{bad}")
        try:
            seg = day_segment(events, day)
        except ExportError as e:
            problems.append(f"database: {e.message}")
            return
        if [e.hash for e in seg.events] != [e.hash for e in exported]:
            problems.append(f"database: its audit events for {day} differ from the export")
        else:
            checked.append(f"database: its {len(seg.events)} events for {day} match the export")
