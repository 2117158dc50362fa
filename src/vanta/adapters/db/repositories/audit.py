"""The hash-chained audit log."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from vanta.adapters.db.repositories._base import _Repo
from vanta.adapters.db.tables import audit_chain_head, audit_events, audit_leaves
from vanta.application.ports.clock import Clock, iso
from vanta.application.ports.records_orders import AuditEventRecord, AuditLeafRecord
from vanta.domain.audit import GENESIS_HASH, AuditEvent, chain_event
from vanta.domain.audit_batch import chain_batches
from vanta.domain.ids import new_id


class AuditRepository(_Repo):
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        super().__init__(conn)
        self._clock = clock

    async def append(self, *, entity: str, entity_id: str, action: str, actor: str,
                     payload: Mapping[str, Any], tenant_id: str | None) -> AuditEvent:
        seq, prev = await self._lock_head()
        ev = chain_event(prev_hash=prev, seq=seq + 1, event_id=new_id(),
                         entity=entity, entity_id=entity_id, action=action, actor=actor,
                         payload=payload, ts=iso(self._clock()), tenant_id=tenant_id)
        await self.conn.execute(insert(audit_events).values(_row(ev)))
        await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                .values(seq=ev.seq, hash=ev.hash))
        return ev

    async def append_many(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Several events in one round of statements (the request log's batches)."""
        if not events:
            return
        seq, prev = await self._lock_head()
        ts = iso(self._clock())
        rows = []
        for e in events:
            seq += 1
            ev = chain_event(prev_hash=prev, seq=seq, event_id=new_id(), entity=e["entity"],
                             entity_id=e["entity_id"], action=e["action"], actor=e["actor"],
                             payload=e["payload"], ts=ts, tenant_id=e["tenant_id"])
            rows.append(_row(ev))
            prev = ev.hash
        await self.conn.execute(insert(audit_events), rows)
        await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                .values(seq=seq, hash=prev))

    async def append_batch(self, records: Sequence[Mapping[str, Any]], *, actor: str) -> None:
        if not records:
            return
        seq, prev = await self._lock_head()
        batches = chain_batches(records, actor=actor, ts=iso(self._clock()), prev_hash=prev,
                                seq=seq)
        await self.conn.execute(insert(audit_events), [_row(b.event) for b in batches])
        await self._insert_many(audit_leaves,  # one statement on PostgreSQL
                                [r for b in batches for r in b.leaf_rows()])
        last = batches[-1].event
        await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                .values(seq=last.seq, hash=last.hash))

    async def leaves_for(self, tenant_id: str, entity_ids: Sequence[str]
                         ) -> list[AuditLeafRecord]:
        ids = sorted(set(entity_ids))
        out: list[AuditLeafRecord] = []
        for i in range(0, len(ids), 500):  # bounded IN lists (SQLite's variable limit)
            out.extend(await self._leaves(audit_leaves.c.entity_id.in_(ids[i:i + 500]),
                                          audit_leaves.c.tenant_id == tenant_id))
        return sorted(out, key=lambda r: (r.seq, r.idx))

    async def leaves_of(self, event_ids: Sequence[str]) -> dict[str, list[AuditLeafRecord]]:
        ids = sorted(set(event_ids))
        out: dict[str, list[AuditLeafRecord]] = {e: [] for e in ids}
        for i in range(0, len(ids), 500):
            for r in await self._leaves(audit_leaves.c.event_id.in_(ids[i:i + 500])):
                out[r.event_id].append(r)
        return {k: sorted(v, key=lambda r: r.idx) for k, v in out.items()}

    async def by_ids(self, event_ids: Sequence[str]) -> dict[str, AuditEventRecord]:
        ids = sorted(set(event_ids))
        out: dict[str, AuditEventRecord] = {}
        for i in range(0, len(ids), 500):
            for r in await self._all(select(audit_events)
                                     .where(audit_events.c.event_id.in_(ids[i:i + 500]))):
                out[r["event_id"]] = AuditEventRecord.from_row(r)
        return out

    async def all_leaves(self) -> dict[str, list[AuditLeafRecord]]:
        out: dict[str, list[AuditLeafRecord]] = {}
        for r in await self._leaves():
            out.setdefault(r.event_id, []).append(r)
        return {k: sorted(v, key=lambda r: r.idx) for k, v in out.items()}

    async def _leaves(self, *where: Any) -> list[AuditLeafRecord]:
        rows = await self._all(
            select(audit_leaves, audit_events.c.seq)
            .join(audit_events, audit_events.c.event_id == audit_leaves.c.event_id)
            .where(*where))
        return [AuditLeafRecord(r["event_id"], int(r["seq"]), int(r["idx"]), r["tenant_id"],
                                r["entity_id"], r["action"], r["record"]) for r in rows]

    async def _lock_head(self) -> tuple[int, str]:
        """The chain's head (seq, hash), its row locked until the transaction ends, so
        appenders queue. The no-op update takes the lock and returns the head in one round
        trip (on PostgreSQL the row as committed by the appender it waited for)."""
        head = (await self.conn.execute(
            update(audit_chain_head).where(audit_chain_head.c.id == 1)
            .values(seq=audit_chain_head.c.seq)
            .returning(audit_chain_head.c.seq, audit_chain_head.c.hash))).first()
        if head is None:  # the first event ever
            await self.conn.execute(insert(audit_chain_head).values(id=1, seq=0,
                                                                    hash=GENESIS_HASH))
            return 0, GENESIS_HASH
        return int(head.seq), str(head.hash)

    async def all(self) -> list[AuditEvent]:
        rows = await self._all(select(audit_events).order_by(audit_events.c.seq))
        return [AuditEventRecord.from_row(r).event() for r in rows]

    async def head(self) -> tuple[int, str] | None:
        row = await self._one(select(audit_chain_head).where(audit_chain_head.c.id == 1))
        return None if row is None else (int(row["seq"]), str(row["hash"]))

    async def since(self, seq: int) -> list[AuditEvent]:
        rows = await self._all(select(audit_events).where(audit_events.c.seq >= seq)
                               .order_by(audit_events.c.seq))
        return [AuditEventRecord.from_row(r).event() for r in rows]

    async def feed(self, tenant_id: str, after_seq: int, entities: Sequence[str],
                   limit: int) -> list[AuditEventRecord]:
        """The tenant's events after ``after_seq``, in log order: a resumable stream."""
        rows = await self._all(select(audit_events).where(
            audit_events.c.tenant_id == tenant_id, audit_events.c.seq > after_seq,
            audit_events.c.entity.in_(list(entities))).order_by(audit_events.c.seq)
            .limit(limit))
        return [AuditEventRecord.from_row(r) for r in rows]

    async def for_entity(self, tenant_id: str, entity_id: str) -> list[AuditEventRecord]:
        rows = await self._all(select(audit_events).where(
            audit_events.c.entity_id == entity_id, audit_events.c.tenant_id == tenant_id)
            .order_by(audit_events.c.seq))
        return [AuditEventRecord.from_row(r) for r in rows]

    async def for_entities(self, tenant_id: str, entity_ids: Sequence[str]
                           ) -> list[AuditEventRecord]:
        ids = sorted(set(entity_ids))
        out: list[AuditEventRecord] = []
        for i in range(0, len(ids), 500):  # bounded IN lists (SQLite's variable limit)
            rows = await self._all(select(audit_events).where(
                audit_events.c.entity_id.in_(ids[i:i + 500]),
                audit_events.c.tenant_id == tenant_id))
            out.extend(AuditEventRecord.from_row(r) for r in rows)
        return sorted(out, key=lambda e: e.seq)


def _row(ev: AuditEvent) -> dict[str, Any]:
    return {"event_id": ev.event_id, "seq": ev.seq, "tenant_id": ev.tenant_id,
            "entity": ev.entity, "entity_id": ev.entity_id, "action": ev.action,
            "actor": ev.actor, "payload": dict(ev.payload), "ts": ev.ts,
            "prev_hash": ev.prev_hash, "hash": ev.hash, "hash_v": ev.hash_v}
