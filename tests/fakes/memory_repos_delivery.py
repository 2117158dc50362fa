"""In-memory outbox, delivery attempts and the hash-chained audit log (the SQL ones:
``adapters/db/repositories/{delivery,audit}.py``)."""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from tests.fakes.memory_repos_base import MemRepo
from tests.fakes.memory_store import Row, Transaction, load_row, utc
from vanta.application.ports.clock import Clock, iso
from vanta.application.ports.delivery import OutboxLease
from vanta.application.ports.records_orders import (
    AttemptRecord,
    AuditEventRecord,
    AuditLeafRecord,
    OutboxRecord,
)
from vanta.domain.audit import GENESIS_HASH, AuditEvent, chain_event
from vanta.domain.audit_batch import chain_batches
from vanta.domain.ids import new_id


class MemOutbox(MemRepo):
    table = "outbox"

    async def add_many(self, topic: str, items: Sequence[tuple[str, Mapping[str, Any]]],
                       now: datetime) -> None:
        if items:
            await self.tx.insert(self.table, [
                {"topic": topic, "key": key, "payload": dict(payload), "created_at": now,
                 "available_at": now, "locked_until": None, "attempts": 0, "done_at": None}
                for key, payload in items], self.conflict)

    async def claim_due(self, topic: str, now: datetime, limit: int,
                        lease: timedelta) -> builtins.list[OutboxRecord]:
        now = utc(now)

        def due(r: Row) -> bool:
            return (r["topic"] == topic and r["done_at"] is None and r["available_at"] <= now
                    and (r["locked_until"] is None or r["locked_until"] < now))

        def first(r: Row) -> tuple[bool, datetime, int]:  # rescheduled rows (retries) first
            return r["available_at"] <= r["created_at"], r["available_at"], r["id"]

        picked = {r["id"] for r in self._select(due, order=first, limit=limit)}
        if not picked:
            return []
        claimed = await self.tx.update(
            self.table, lambda r: r["id"] in picked and due(r),
            lambda r: {"locked_until": now + lease, "attempts": r["attempts"] + 1})
        return [OutboxRecord.from_row(load_row(self.spec, r))
                for r in sorted(claimed, key=first)]

    async def take_many(self, leases: Sequence[OutboxLease], now: datetime,
                        lease: timedelta) -> builtins.list[OutboxRecord]:
        if not leases:
            return []
        by_id: dict[int, builtins.list[OutboxLease]] = {}
        for x in leases:
            by_id.setdefault(x.row_id, []).append(x)

        def named(r: Row) -> bool:
            if r["done_at"] is not None or r["locked_until"] is None:
                return False
            # No clock comparison, as in SQL: a skewed worker must not skip live rows.
            return any(x.number is None
                       or (x.number == r["attempts"]
                           and (x.until is None or utc(x.until) == r["locked_until"]
                                or (x.claimed_until is not None
                                    and utc(x.claimed_until) == r["locked_until"])))
                       for x in by_id.get(r["id"], ()))

        renewed = await self.tx.update(self.table, named,
                                       {"locked_until": utc(now) + lease})
        return [OutboxRecord.from_row(load_row(self.spec, r)) for r in renewed]

    async def renew_many(self, leases: Sequence[tuple[int, int]], now: datetime,
                         lease: timedelta) -> builtins.list[int]:
        wanted = set(leases)
        renewed = await self.tx.update(
            self.table, lambda r: r["done_at"] is None and r["locked_until"] is not None
            and (r["id"], r["attempts"]) in wanted, {"locked_until": utc(now) + lease})
        return [int(r["id"]) for r in renewed]

    async def hand_over(self, leases: Sequence[OutboxLease], until: datetime) -> int:
        exact = {(x.row_id, x.number, utc(x.until)) for x in leases
                 if x.number is not None and x.until is not None}
        moved = await self.tx.update(
            self.table, lambda r: r["done_at"] is None
            and (r["id"], r["attempts"], r["locked_until"]) in exact,
            {"locked_until": utc(until)})
        return len(moved)

    async def requeue(self, key: str, now: datetime) -> None:
        moved = await self.tx.update(self.table, lambda r: r["key"] == key,
                                     {"done_at": None, "locked_until": None,
                                      "available_at": now})
        if not moved:
            await self.add_many("mirror.dispatch", [(key, {"fo_id": key})], now)

    async def complete(self, row_id: int, now: datetime) -> None:
        await self.complete_many([row_id], now)

    async def complete_many(self, row_ids: Sequence[int], now: datetime) -> None:
        if row_ids:
            ids = set(row_ids)
            await self.tx.update(self.table, lambda r: r["id"] in ids,
                                 {"done_at": now, "locked_until": None})

    async def release_many(self, row_ids: Sequence[int]) -> None:
        if row_ids:
            ids = set(row_ids)
            await self.tx.update(self.table, lambda r: r["id"] in ids and r["done_at"] is None,
                                 {"locked_until": None})

    async def release_unclaimed(self, leases: Sequence[OutboxLease]) -> int:
        exact = {(x.row_id, x.number, utc(x.until) if x.until else None) for x in leases}
        released = await self.tx.update(
            self.table, lambda r: r["done_at"] is None
            and (r["id"], r["attempts"], r["locked_until"]) in exact, {"locked_until": None})
        return len(released)

    async def reschedule_many(self, due: Sequence[tuple[int, datetime]]) -> None:
        at_of = dict(due)
        for row_id, at in at_of.items():
            await self.tx.update(self.table, _is_row(row_id),
                                 {"available_at": at, "locked_until": None})

    async def pending_count(self, topic: str) -> int:
        return sum(1 for _ in self.tx.scan(
            self.table, lambda r: r["topic"] == topic and r["done_at"] is None))


def _is_row(row_id: int) -> Callable[[Row], bool]:
    return lambda r: bool(r["id"] == row_id)


def _is_attempt(fo_id: str, attempt_no: int) -> Callable[[Row], bool]:
    return lambda r: bool(r["fo_id"] == fo_id and r["attempt_no"] == attempt_no)


_OUTCOME = ("status_code", "latency_ms", "response_excerpt", "error", "outcome")


class MemAttempts(MemRepo):
    table = "delivery_attempts"

    async def mark_lost(self, fo_id: str) -> None:
        await self.mark_lost_many([fo_id])

    async def mark_lost_many(self, fo_ids: Sequence[str]) -> None:
        if fo_ids:
            ids = set(fo_ids)
            await self.tx.update(
                self.table, lambda r: r["fo_id"] in ids and r["outcome"] == "in_flight",
                {"outcome": "lost", "error": "the worker stopped before an answer was recorded"})

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if rows:
            await self.tx.insert(self.table, rows, self.conflict)

    async def settle_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        missing = []
        for row in rows:
            moved = await self.tx.update(self.table, _is_attempt(row["fo_id"], row["attempt_no"]),
                                         {c: row[c] for c in _OUTCOME})
            if not moved:
                missing.append({c: row[c] for c in ("fo_id", "attempt_no", "started_at",
                                                     *_OUTCOME)})
        await self.add_many(missing)

    async def list(self, fo_id: str) -> builtins.list[AttemptRecord]:
        return [AttemptRecord.from_row(r) for r in self._select(
            lambda r: r["fo_id"] == fo_id, order=lambda r: r["attempt_no"])]

    async def started_since(self, tenant_id: str, since: datetime, limit: int
                            ) -> builtins.list[AttemptRecord]:
        own = {r["fo_id"] for r in self.tx.scan("follower_orders",
                                                lambda r: r["tenant_id"] == tenant_id)}
        return [AttemptRecord.from_row(r) for r in self._select(
            lambda r: r["fo_id"] in own and r["started_at"] >= since,
            order=lambda r: (r["started_at"], r["id"]), limit=limit)]

    async def list_many(self, fo_ids: Sequence[str]
                        ) -> dict[str, builtins.list[AttemptRecord]]:
        wanted = set(fo_ids)
        out: dict[str, builtins.list[AttemptRecord]] = {}
        for r in self._select(lambda r: r["fo_id"] in wanted,
                              order=lambda r: (r["fo_id"], r["attempt_no"])):
            out.setdefault(r["fo_id"], []).append(AttemptRecord.from_row(r))
        return out


class MemAudit(MemRepo):
    """Chains with the domain's ``chain_event`` over a head row, as the SQL log does; the
    writer slot serializes appenders as the head row's lock does there."""

    table = "audit_events"

    def __init__(self, tx: Transaction, clock: Clock) -> None:
        super().__init__(tx)
        self._clock = clock

    async def _head(self) -> tuple[int, str]:
        head = (await self.tx.writable("audit_chain_head")).get((1,))
        return (int(head["seq"]), head["hash"]) if head else (0, GENESIS_HASH)

    async def _store(self, rows: builtins.list[Row], seq: int, last: str) -> None:
        await self.tx.insert(self.table, rows, self.conflict)
        await self.tx.delete("audit_chain_head", lambda r: r["id"] == 1)
        await self.tx.insert("audit_chain_head", [{"id": 1, "seq": seq, "hash": last}])

    async def append(self, *, entity: str, entity_id: str, action: str, actor: str,
                     payload: Mapping[str, Any], tenant_id: str | None) -> AuditEvent:
        seq, prev = await self._head()
        ev = chain_event(prev_hash=prev, seq=seq + 1, event_id=new_id(), entity=entity,
                         entity_id=entity_id, action=action, actor=actor, payload=payload,
                         ts=iso(self._clock()), tenant_id=tenant_id)
        await self._store([_event_row(ev)], ev.seq, ev.hash)
        return ev

    async def append_many(self, events: Sequence[Mapping[str, Any]]) -> None:
        if not events:
            return
        seq, prev = await self._head()
        ts, rows = iso(self._clock()), []
        for e in events:
            seq += 1
            ev = chain_event(prev_hash=prev, seq=seq, event_id=new_id(), entity=e["entity"],
                             entity_id=e["entity_id"], action=e["action"], actor=e["actor"],
                             payload=e["payload"], ts=ts, tenant_id=e["tenant_id"])
            rows.append(_event_row(ev))
            prev = ev.hash
        await self._store(rows, seq, prev)

    async def append_batch(self, records: Sequence[Mapping[str, Any]], *, actor: str) -> None:
        if not records:
            return
        seq, prev = await self._head()
        batches = chain_batches(records, actor=actor, ts=iso(self._clock()), prev_hash=prev,
                                seq=seq)
        await self._store([_event_row(b.event) for b in batches], batches[-1].event.seq,
                          batches[-1].event.hash)
        await self.tx.insert("audit_leaves", [r for b in batches for r in b.leaf_rows()])

    def _leaves(self, where: Callable[[Row], bool]) -> builtins.list[AuditLeafRecord]:
        seqs = {r["event_id"]: r["seq"] for r in self.tx.scan(self.table)}
        return sorted((AuditLeafRecord(r["event_id"], int(seqs[r["event_id"]]), r["idx"],
                                       r["tenant_id"], r["entity_id"], r["action"],
                                       r["record"])
                       for r in self.tx.scan("audit_leaves", where)),
                      key=lambda lf: (lf.seq, lf.idx))

    async def leaves_for(self, tenant_id: str, entity_ids: Sequence[str]
                         ) -> builtins.list[AuditLeafRecord]:
        wanted = set(entity_ids)
        return self._leaves(lambda r: r["entity_id"] in wanted and r["tenant_id"] == tenant_id)

    async def leaves_of(self, event_ids: Sequence[str]
                        ) -> dict[str, builtins.list[AuditLeafRecord]]:
        out: dict[str, builtins.list[AuditLeafRecord]] = {e: [] for e in event_ids}
        for lf in self._leaves(lambda r: r["event_id"] in out):
            out[lf.event_id].append(lf)
        return out

    async def by_ids(self, event_ids: Sequence[str]) -> dict[str, AuditEventRecord]:
        wanted = set(event_ids)
        return {r["event_id"]: AuditEventRecord.from_row(r)
                for r in self._select(lambda r: r["event_id"] in wanted)}

    async def all_leaves(self) -> dict[str, builtins.list[AuditLeafRecord]]:
        out: dict[str, builtins.list[AuditLeafRecord]] = {}
        for lf in self._leaves(lambda r: True):
            out.setdefault(lf.event_id, []).append(lf)
        return out

    async def all(self) -> builtins.list[AuditEvent]:
        return [AuditEventRecord.from_row(r).event()
                for r in self._select(order=lambda r: r["seq"])]

    async def head(self) -> tuple[int, str] | None:
        head = self.tx.get("audit_chain_head", 1)
        return None if head is None else (int(head["seq"]), head["hash"])

    async def since(self, seq: int) -> builtins.list[AuditEvent]:
        return [AuditEventRecord.from_row(r).event()
                for r in self._select(lambda r: r["seq"] >= seq, order=lambda r: r["seq"])]

    async def feed(self, tenant_id: str, after_seq: int, entities: Sequence[str],
                   limit: int) -> builtins.list[AuditEventRecord]:
        kinds = set(entities)
        return [AuditEventRecord.from_row(r) for r in self._select(
            lambda r: r["tenant_id"] == tenant_id and r["seq"] > after_seq
            and r["entity"] in kinds, order=lambda r: r["seq"], limit=limit)]

    async def for_entity(self, tenant_id: str, entity_id: str
                         ) -> builtins.list[AuditEventRecord]:
        return [AuditEventRecord.from_row(r) for r in self._select(
            lambda r: r["entity_id"] == entity_id and r["tenant_id"] == tenant_id,
            order=lambda r: r["seq"])]

    async def for_entities(self, tenant_id: str, entity_ids: Sequence[str]
                           ) -> builtins.list[AuditEventRecord]:
        wanted = set(entity_ids)
        return [AuditEventRecord.from_row(r) for r in self._select(
            lambda r: r["entity_id"] in wanted and r["tenant_id"] == tenant_id,
            order=lambda r: r["seq"])]


def _event_row(ev: AuditEvent) -> Row:
    return {"event_id": ev.event_id, "seq": ev.seq, "tenant_id": ev.tenant_id,
            "entity": ev.entity, "entity_id": ev.entity_id, "action": ev.action,
            "actor": ev.actor, "payload": dict(ev.payload), "ts": ev.ts,
            "prev_hash": ev.prev_hash, "hash": ev.hash, "hash_v": ev.hash_v}
