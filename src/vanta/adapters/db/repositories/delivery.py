"""The outbox and the delivery attempts of child orders."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, select, tuple_, update

from vanta.adapters.db.repositories._base import OUTBOX_CHANNEL, _Repo
from vanta.adapters.db.tables import RESCHEDULED, delivery_attempts, follower_orders, outbox
from vanta.application.ports.delivery import OutboxLease
from vanta.application.ports.records_orders import AttemptRecord, OutboxRecord


class OutboxRepository(_Repo):
    async def add_many(self, topic: str, items: Sequence[tuple[str, Mapping[str, Any]]],
                       now: datetime) -> None:
        if not items:
            return
        await self._insert_many(outbox, [
            {"topic": topic, "key": key, "payload": dict(payload), "created_at": now,
             "available_at": now, "locked_until": None, "attempts": 0, "done_at": None}
            for key, payload in items
        ])
        await self._notify_due()

    async def _notify_due(self) -> None:
        """On PostgreSQL, tell listening relays that rows are due once this transaction
        commits (a rolled-back transaction notifies nobody): they wake at once instead of at
        their next poll."""
        if self._postgres:
            await self.conn.execute(select(func.pg_notify(OUTBOX_CHANNEL, "")))

    async def claim_due(self, topic: str, now: datetime, limit: int,
                        lease: timedelta) -> builtins.list[OutboxRecord]:
        """Lease up to ``limit`` due rows, rescheduled ones (retries) first, then the
        oldest; a worker that dies lets its lease lapse."""
        due = and_(outbox.c.topic == topic, outbox.c.done_at.is_(None),
                   outbox.c.available_at <= now,
                   or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now))
        # the partial index ix_outbox_rescheduled serves this without reading the backlog
        moved = and_(due, RESCHEDULED)
        ids = [c["id"] for c in await self._all(
            select(outbox.c.id).where(moved).order_by(outbox.c.available_at, outbox.c.id)
            .limit(limit))]
        if len(ids) < limit:
            taken = set(ids)
            ids += [c["id"] for c in await self._all(
                select(outbox.c.id).where(due).order_by(outbox.c.available_at, outbox.c.id)
                .limit(limit)) if c["id"] not in taken][:limit - len(ids)]
        if not ids:
            return []
        # ``due`` again in the update: a row another worker leased meanwhile is not taken.
        claimed = await self._all(update(outbox).where(self._among(outbox.c.id, ids), due)
                                  .values(locked_until=now + lease,
                                          attempts=outbox.c.attempts + 1)
                                  .returning(*outbox.c))
        return sorted(map(OutboxRecord.from_row, claimed),
                      key=lambda r: (r.available_at <= r.created_at, r.available_at, r.id))

    async def take_many(self, leases: Sequence[OutboxLease], now: datetime,
                        lease: timedelta) -> builtins.list[OutboxRecord]:
        """Renew the lease of each row that is still open, still leased and still on the
        lease its message names; the rows renewed. A lease is named by its number and, when
        the message carries it, its expiry at publication: renewing moves the expiry, so of
        two copies of one message (a redelivery while the first is being worked on) only
        the first takes the row. Without a number any live lease will do."""
        if not leases:
            return []
        named = [(x.row_id, x.number, x.until) for x in leases
                 if x.number is not None and x.until is not None]
        named += [(x.row_id, x.number, x.claimed_until) for x in leases
                  if x.number is not None and x.until is not None
                  and x.claimed_until is not None]
        numbered = [(x.row_id, x.number) for x in leases
                    if x.number is not None and x.until is None]
        loose = [x.row_id for x in leases if x.number is None]
        which = []
        if named:
            which.append(tuple_(outbox.c.id, outbox.c.attempts, outbox.c.locked_until)
                         .in_(named))
        if numbered:
            which.append(tuple_(outbox.c.id, outbox.c.attempts).in_(numbered))
        if loose:
            which.append(outbox.c.id.in_(loose))
        # No clock comparison: a worker with a skewed clock must not skip live rows. The plain
        # id list lets PostgreSQL use the primary key before it checks the row values.
        rows = await self._all(update(outbox).where(
            self._among(outbox.c.id, [x.row_id for x in leases]), or_(*which),
            outbox.c.done_at.is_(None), outbox.c.locked_until.is_not(None))
            .values(locked_until=now + lease).returning(*outbox.c))
        return [OutboxRecord.from_row(r) for r in rows]

    async def renew_many(self, leases: Sequence[tuple[int, int]], now: datetime,
                         lease: timedelta) -> builtins.list[int]:
        """A holder's heartbeat: renew each (row, lease number) still open and leased."""
        if not leases:
            return []
        rows = await self._all(update(outbox).where(
            self._among(outbox.c.id, [i for i, _ in leases]),
            tuple_(outbox.c.id, outbox.c.attempts).in_(list(leases)),
            outbox.c.done_at.is_(None), outbox.c.locked_until.is_not(None))
            .values(locked_until=now + lease).returning(outbox.c.id))
        return [int(r["id"]) for r in rows]

    async def hand_over(self, leases: Sequence[OutboxLease], until: datetime) -> int:
        """Move each lease still exactly as named to expire at ``until``."""
        exact = [(x.row_id, x.number, x.until) for x in leases
                 if x.number is not None and x.until is not None]
        if not exact:
            return 0
        res = await self.conn.execute(update(outbox).where(
            self._among(outbox.c.id, [x[0] for x in exact]),
            tuple_(outbox.c.id, outbox.c.attempts, outbox.c.locked_until).in_(exact),
            outbox.c.done_at.is_(None)).values(locked_until=until))
        return int(res.rowcount)

    async def requeue(self, key: str, now: datetime) -> None:
        """Make the (single) outbox row of ``key`` due again, creating it if it is gone."""
        res = await self.conn.execute(update(outbox).where(outbox.c.key == key).values(
            done_at=None, locked_until=None, available_at=now))
        if res.rowcount == 0:
            await self.add_many("mirror.dispatch", [(key, {"fo_id": key})], now)
        else:
            await self._notify_due()

    async def complete(self, row_id: int, now: datetime) -> None:
        await self.conn.execute(update(outbox).where(outbox.c.id == row_id)
                                .values(done_at=now, locked_until=None))

    async def complete_many(self, row_ids: Sequence[int], now: datetime) -> None:
        if row_ids:
            await self.conn.execute(update(outbox).where(self._among(outbox.c.id, row_ids))
                                    .values(done_at=now, locked_until=None))

    async def release_many(self, row_ids: Sequence[int]) -> None:
        """Hand leases back unused: the rows are due again at once."""
        if row_ids:
            await self.conn.execute(update(outbox).where(self._among(outbox.c.id, row_ids),
                                                         outbox.c.done_at.is_(None))
                                    .values(locked_until=None))

    async def release_unclaimed(self, leases: Sequence[OutboxLease]) -> int:
        """Hand back each lease still exactly as leased (same number and expiry, not done):
        a consumer that took the row meanwhile renewed it, and keeps it. The number handed
        back."""
        released = 0
        for x in leases:
            res = await self.conn.execute(update(outbox).where(
                outbox.c.id == x.row_id, outbox.c.attempts == x.number,
                outbox.c.locked_until == x.until, outbox.c.done_at.is_(None))
                .values(locked_until=None))
            released += res.rowcount
        return released

    async def reschedule_many(self, due: Sequence[tuple[int, datetime]]) -> None:
        if due:
            await self.conn.execute(
                update(outbox).where(outbox.c.id == bindparam("row_id"))
                .values(available_at=bindparam("at"), locked_until=None),
                [{"row_id": i, "at": at} for i, at in due])

    async def pending_count(self, topic: str) -> int:
        r = await self._one(select(func.count().label("n")).select_from(outbox)
                            .where(outbox.c.topic == topic, outbox.c.done_at.is_(None)))
        return int(r["n"]) if r else 0


_OUTCOME_COLS = ("status_code", "latency_ms", "response_excerpt", "error", "outcome")
_ATTEMPT_COLS = ("fo_id", "attempt_no", "started_at", *_OUTCOME_COLS)


class AttemptRepository(_Repo):
    async def mark_lost(self, fo_id: str) -> None:
        """Attempts whose worker died before recording an answer."""
        await self.mark_lost_many([fo_id])

    async def mark_lost_many(self, fo_ids: Sequence[str]) -> None:
        if fo_ids:
            await self.conn.execute(update(delivery_attempts).where(
                self._among(delivery_attempts.c.fo_id, fo_ids),
                delivery_attempts.c.outcome == "in_flight")
                .values(outcome="lost",
                        error="the worker stopped before an answer was recorded"))

    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        await self._insert_many(delivery_attempts, rows)

    async def settle_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record answers: each row carries ``fo_id``, ``attempt_no``, ``started_at`` and the
        outcome columns; the attempt's row is updated, or added if it is missing."""
        if not rows:
            return
        if self._postgres:
            await self._settle_unnest(rows)
            return
        keys = {(r["fo_id"], r["attempt_no"]) for r in rows}
        # By fo_id alone (one index lookup per id); a (fo_id, attempt_no) row-value list
        # turns into an OR of index scans that PostgreSQL plans badly on big tables.
        found = {(r.fo_id, r.attempt_no) for r in (await self.conn.execute(
            select(delivery_attempts.c.fo_id, delivery_attempts.c.attempt_no).where(
                self._among(delivery_attempts.c.fo_id, {k[0] for k in keys})))).all()} & keys
        present = [r for r in rows if (r["fo_id"], r["attempt_no"]) in found]
        missing = [r for r in rows if (r["fo_id"], r["attempt_no"]) not in found]
        outcome_cols = _OUTCOME_COLS
        if present:
            await self.conn.execute(
                update(delivery_attempts).where(
                    delivery_attempts.c.fo_id == bindparam("k_fo"),
                    delivery_attempts.c.attempt_no == bindparam("k_no"))
                .values({c: bindparam(f"v_{c}") for c in outcome_cols}),
                [{"k_fo": r["fo_id"], "k_no": r["attempt_no"],
                  **{f"v_{c}": r[c] for c in outcome_cols}} for r in present])
        await self.add_many([{c: r[c] for c in _ATTEMPT_COLS} for r in missing])

    async def _settle_unnest(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """PostgreSQL: the batch's answers in one ``UPDATE ... FROM unnest(...)``; the rows
        it did not find (an attempt row lost with a rolled-back start) are inserted."""
        a = delivery_attempts
        v = self._unnest("v", a, rows, ("fo_id", "attempt_no", *_OUTCOME_COLS))
        found = {(r.fo_id, r.attempt_no) for r in (await self.conn.execute(
            update(a).where(a.c.fo_id == v.c.fo_id, a.c.attempt_no == v.c.attempt_no)
            .values({c: v.c[c] for c in _OUTCOME_COLS})
            .returning(a.c.fo_id, a.c.attempt_no))).all()}
        await self.add_many([{c: r[c] for c in _ATTEMPT_COLS} for r in rows
                             if (r["fo_id"], r["attempt_no"]) not in found])

    async def list(self, fo_id: str) -> builtins.list[AttemptRecord]:
        rows = await self._all(select(delivery_attempts).where(delivery_attempts.c.fo_id == fo_id)
                               .order_by(delivery_attempts.c.attempt_no))
        return [AttemptRecord.from_row(r) for r in rows]

    async def started_since(self, tenant_id: str, since: datetime, limit: int
                            ) -> builtins.list[AttemptRecord]:
        a = delivery_attempts
        rows = await self._all(
            select(a).join(follower_orders, follower_orders.c.fo_id == a.c.fo_id)
            .where(follower_orders.c.tenant_id == tenant_id, a.c.started_at >= since)
            .order_by(a.c.started_at, a.c.id).limit(limit))
        return [AttemptRecord.from_row(r) for r in rows]

    async def list_many(self, fo_ids: Sequence[str]
                        ) -> dict[str, builtins.list[AttemptRecord]]:
        ids = sorted(set(fo_ids))
        out: dict[str, builtins.list[AttemptRecord]] = {}
        for i in range(0, len(ids), 500):  # bounded IN lists (SQLite's variable limit)
            rows = await self._all(select(delivery_attempts).where(
                delivery_attempts.c.fo_id.in_(ids[i:i + 500])).order_by(
                delivery_attempts.c.fo_id, delivery_attempts.c.attempt_no))
            for r in rows:
                out.setdefault(r["fo_id"], []).append(AttemptRecord.from_row(r))
        return out
