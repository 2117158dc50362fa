"""Repositories over one connection. Every read a tenant can reach takes its tenant id."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import (
    and_,
    any_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement

from vanta.adapters.db.tables import (
    audit_chain_head,
    audit_events,
    delivery_attempts,
    fills,
    follower_orders,
    followers,
    instruments,
    invitations,
    manager_orders,
    nav_observations,
    outbox,
    subscriptions,
    tenants,
    users,
    vault_overlays,
    vaults,
)
from vanta.application.clock import Clock, iso
from vanta.domain.audit import GENESIS_HASH, AuditEvent, chain_event
from vanta.domain.ids import new_id
from vanta.domain.money import ZERO
from vanta.domain.orders import POSITION_STATES, ChildOrder

Row = dict[str, Any]
OUTBOX_CHANNEL = "vanta_outbox"  # PostgreSQL NOTIFY channel: outbox rows became due


def _after(ts_col: Any, id_col: Any, after: tuple[datetime, str]) -> Any:
    """Keyset pagination: rows strictly after (timestamp, id) in (timestamp, id) order."""
    ts, key = after
    return or_(ts_col > ts, and_(ts_col == ts, id_col > key))


def _row(r: Any) -> Row:
    """A result row as a dict, timestamps made aware (SQLite returns them naive)."""
    d = dict(r._mapping)
    for k, v in d.items():
        if isinstance(v, datetime) and v.tzinfo is None:
            d[k] = v.replace(tzinfo=UTC)
    return d


def _plain_row(r: Any) -> Row:
    """A result row as a dict, for a driver that returns aware timestamps (asyncpg)."""
    return dict(r._mapping)


class _Repo:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn
        self._postgres = conn.dialect.name == "postgresql"
        self._to_row = _plain_row if self._postgres else _row

    def _among(self, col: Any, values: Iterable[Any]) -> ColumnElement[bool]:
        """``col`` is one of ``values``. On PostgreSQL ``col = ANY($n)`` with the list as one
        array parameter: the statement's text does not depend on the list's length, so it is
        compiled and prepared once (an expanded ``IN ($1, …, $64)`` is rendered for every
        execution and prepared per length: about twice the client CPU for a batch's id list),
        and the index on ``col`` serves it as it serves ``IN``. Elsewhere a plain ``IN``."""
        if self._postgres:
            return col == any_(bindparam(f"{col.name}_list", list(values),
                                         type_=ARRAY(col.type), unique=True))
        return col.in_(list(values))  # type: ignore[no-any-return]

    async def _one(self, stmt: Any) -> Row | None:
        r = (await self.conn.execute(stmt)).first()
        return self._to_row(r) if r is not None else None

    async def _all(self, stmt: Any) -> list[Row]:
        to_row = self._to_row
        return [to_row(r) for r in (await self.conn.execute(stmt)).all()]

    async def _by_key(self, key: Any, values: Iterable[str],
                      leave_out: tuple[str, ...] = ()) -> dict[str, Row]:
        """Rows of ``key``'s table whose ``key`` is one of ``values``, by that key."""
        wanted = list(set(values))
        if not wanted:
            return {}
        cols = [c for c in key.table.c if c.name not in leave_out]
        rows = await self._all(select(*cols).where(self._among(key, wanted)))
        return {r[key.name]: r for r in rows}


class TenantRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(tenants).values(**row))

    async def get(self, tenant_id: str) -> Row | None:
        return await self._one(select(tenants).where(tenants.c.tenant_id == tenant_id))


class VaultRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(vaults).values(**row))

    async def get(self, tenant_id: str, vault_id: str) -> Row | None:
        return await self._one(select(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id))

    async def get_for_update(self, tenant_id: str, vault_id: str) -> Row | None:
        """Locks the vault row on PostgreSQL so expansions of one vault run one at a time."""
        return await self._one(select(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id).with_for_update())

    async def list(self, tenant_id: str) -> list[Row]:
        return await self._all(select(vaults).where(vaults.c.tenant_id == tenant_id)
                               .order_by(vaults.c.created_at, vaults.c.vault_id))

    async def set_maintenance(self, tenant_id: str, vault_id: str, enabled: bool) -> None:
        await self.conn.execute(update(vaults).where(
            vaults.c.vault_id == vault_id, vaults.c.tenant_id == tenant_id)
            .values(maintenance=enabled))

    async def under_maintenance(self, vault_ids: Iterable[str]) -> set[str]:
        """Which of ``vault_ids`` are in maintenance (one query for a dispatch batch)."""
        ids = list(set(vault_ids))
        if not ids:
            return set()
        rows = await self._all(select(vaults.c.vault_id).where(
            self._among(vaults.c.vault_id, ids), vaults.c.maintenance.is_(True)))
        return {r["vault_id"] for r in rows}


class FollowerRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(followers).values(**row))

    async def get(self, tenant_id: str, follower_id: str) -> Row | None:
        return await self._one(select(followers).where(
            followers.c.follower_id == follower_id, followers.c.tenant_id == tenant_id))

    async def get_unscoped(self, follower_id: str) -> Row | None:
        """For workers acting on a stored child order, which already carries its tenant."""
        return await self._one(select(followers).where(followers.c.follower_id == follower_id))

    async def get_many_unscoped(self, follower_ids: Iterable[str]) -> dict[str, Row]:
        return await self._by_key(followers.c.follower_id, follower_ids)

    async def list_for_vault(self, tenant_id: str, vault_id: str) -> list[Row]:
        return await self._all(select(followers).where(
            followers.c.vault_id == vault_id, followers.c.tenant_id == tenant_id)
            .order_by(followers.c.follower_id))

    async def page_for_vault(self, tenant_id: str, vault_id: str, after: str | None,
                             limit: int) -> list[Row]:
        stmt = select(followers).where(followers.c.vault_id == vault_id,
                                       followers.c.tenant_id == tenant_id)
        if after is not None:
            stmt = stmt.where(followers.c.follower_id > after)
        return await self._all(stmt.order_by(followers.c.follower_id).limit(limit))

    async def update(self, tenant_id: str, follower_id: str, **values: Any) -> None:
        await self.conn.execute(update(followers).where(
            followers.c.follower_id == follower_id, followers.c.tenant_id == tenant_id)
            .values(**values))


class ManagerOrderRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(manager_orders).values(**row))

    async def get(self, tenant_id: str, mo_id: str) -> Row | None:
        return await self._one(select(manager_orders).where(
            manager_orders.c.mo_id == mo_id, manager_orders.c.tenant_id == tenant_id))

    async def get_unscoped(self, mo_id: str) -> Row | None:
        return await self._one(select(manager_orders).where(manager_orders.c.mo_id == mo_id))

    async def get_many_unscoped(self, mo_ids: Iterable[str]) -> dict[str, Row]:
        """Without the expansion snapshot (every follower's inputs: large, not needed to
        deliver)."""
        return await self._by_key(manager_orders.c.mo_id, mo_ids, leave_out=("snapshot",))

    async def list(self, tenant_id: str, since: datetime | None, limit: int,
                   vault_id: str | None = None,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None) -> list[Row]:
        stmt = select(manager_orders).where(manager_orders.c.tenant_id == tenant_id)
        if vault_ids is not None:
            stmt = stmt.where(manager_orders.c.vault_id.in_(list(vault_ids)))
        if since is not None:
            stmt = stmt.where(manager_orders.c.created_at > since)
        if after is not None:
            stmt = stmt.where(_after(manager_orders.c.created_at, manager_orders.c.mo_id, after))
        if vault_id is not None:
            stmt = stmt.where(manager_orders.c.vault_id == vault_id)
        return await self._all(stmt.order_by(manager_orders.c.created_at, manager_orders.c.mo_id)
                               .limit(limit))

    async def net_position(self, vault_id: str, symbol: str) -> Decimal:
        """The manager's own position in a symbol: its orders, not follower syncs."""
        rows = await self._all(select(manager_orders.c.side, manager_orders.c.qty).where(
            manager_orders.c.vault_id == vault_id, manager_orders.c.symbol == symbol,
            manager_orders.c.source != "sync"))
        total = ZERO
        for r in rows:
            total += r["qty"] if r["side"] == "buy" else -r["qty"]
        return total

    async def holdings(self, vault_id: str) -> dict[str, tuple[Decimal, str, Decimal | None]]:
        """symbol -> (net qty, venue, last ref price) of the manager's open positions."""
        rows = await self._all(select(manager_orders).where(
            manager_orders.c.vault_id == vault_id, manager_orders.c.source != "sync")
            .order_by(manager_orders.c.created_at))
        out: dict[str, tuple[Decimal, str, Decimal | None]] = {}
        for r in rows:
            qty, _, px = out.get(r["symbol"], (ZERO, r["venue"], None))
            qty += r["qty"] if r["side"] == "buy" else -r["qty"]
            out[r["symbol"]] = (qty, r["venue"], r["ref_price"] or px)
        return {k: v for k, v in out.items() if v[0] > 0}

    async def reopen(self, mo_id: str) -> None:
        """A redelivered child makes a completed order open again."""
        await self.conn.execute(update(manager_orders).where(
            manager_orders.c.mo_id == mo_id, manager_orders.c.state == "completed")
            .values(state="expanded"))

    async def set_state(self, mo_id: str, state: str) -> None:
        await self.conn.execute(update(manager_orders).where(manager_orders.c.mo_id == mo_id)
                                .values(state=state))


class ChildOrderRepository(_Repo):
    async def add_many(self, children: Sequence[ChildOrder], *, tenant_id: str, vault_id: str,
                       now: datetime) -> None:
        if not children:
            return
        await self.conn.execute(insert(follower_orders), [
            {
                "fo_id": c.fo_id, "mo_id": c.mo_id, "follower_id": c.follower_id,
                "tenant_id": tenant_id, "vault_id": vault_id, "symbol": c.symbol,
                "venue": c.venue, "side": c.side.value, "qty": c.qty,
                "cap_applied": c.cap_applied, "state": c.state.value,
                "skip_reason": c.skip_reason, "dispatch_attempts": 0, "last_error": None,
                "audit": {"sizing": c.sizing}, "created_at": now, "updated_at": now,
            }
            for c in children
        ])

    async def positions(self, follower_ids: Iterable[str],
                        symbols: Iterable[str]) -> dict[tuple[str, str], Decimal]:
        """Net quantity per (follower, symbol) from child orders that still count
        (see POSITION_STATES).

        Summed in Python: SQLite stores quantities as text, and summing text is not exact.
        """
        ids, syms = list(follower_ids), list(symbols)
        if not ids or not syms:
            return {}
        out: dict[tuple[str, str], Decimal] = {}
        for i in range(0, len(ids), 500):  # bounded IN lists
            rows = await self._all(
                select(follower_orders.c.follower_id, follower_orders.c.symbol,
                       follower_orders.c.side, follower_orders.c.qty)
                .where(follower_orders.c.follower_id.in_(ids[i:i + 500]),
                       follower_orders.c.symbol.in_(syms),
                       follower_orders.c.state.in_([s.value for s in POSITION_STATES])))
            for r in rows:
                key = (r["follower_id"], r["symbol"])
                signed = r["qty"] if r["side"] == "buy" else -r["qty"]
                out[key] = out.get(key, ZERO) + signed
        return out

    async def get(self, tenant_id: str, fo_id: str) -> Row | None:
        return await self._one(select(follower_orders).where(
            follower_orders.c.fo_id == fo_id, follower_orders.c.tenant_id == tenant_id))

    async def get_unscoped(self, fo_id: str) -> Row | None:
        return await self._one(select(follower_orders).where(follower_orders.c.fo_id == fo_id))

    async def list(self, tenant_id: str, *, follower_id: str | None, mo_id: str | None,
                   since: datetime | None, limit: int,
                   after: tuple[datetime, str] | None = None,
                   vault_ids: Iterable[str] | None = None) -> list[Row]:
        stmt = select(follower_orders).where(follower_orders.c.tenant_id == tenant_id)
        if vault_ids is not None:
            stmt = stmt.where(follower_orders.c.vault_id.in_(list(vault_ids)))
        if after is not None:
            stmt = stmt.where(_after(follower_orders.c.created_at, follower_orders.c.fo_id,
                                     after))
        if follower_id is not None:
            stmt = stmt.where(follower_orders.c.follower_id == follower_id)
        if mo_id is not None:
            stmt = stmt.where(follower_orders.c.mo_id == mo_id)
        if since is not None:
            stmt = stmt.where(follower_orders.c.created_at > since)
        return await self._all(stmt.order_by(follower_orders.c.created_at,
                                             follower_orders.c.fo_id).limit(limit))

    async def update(self, fo_id: str, *, expect_state: str, **values: Any) -> bool:
        """Compare-and-set on state, so two workers can never both move one child."""
        res = await self.conn.execute(update(follower_orders).where(
            follower_orders.c.fo_id == fo_id, follower_orders.c.state == expect_state)
            .values(**values))
        return res.rowcount == 1

    async def get_many_unscoped(self, fo_ids: Iterable[str]) -> dict[str, Row]:
        """For delivery: without the sizing record (``audit``), which delivery never reads."""
        return await self._by_key(follower_orders.c.fo_id, fo_ids, leave_out=("audit",))

    async def update_many(self, fo_ids: Sequence[str], *, expect_state: str,
                          count_attempt: bool = False, **values: Any) -> dict[str, int]:
        """Compare-and-set for many children in one statement: the ones that moved, each
        with its ``dispatch_attempts`` after the update (``count_attempt`` adds one)."""
        if not fo_ids:
            return {}
        if count_attempt:
            values["dispatch_attempts"] = follower_orders.c.dispatch_attempts + 1
        res = await self.conn.execute(update(follower_orders).where(
            self._among(follower_orders.c.fo_id, fo_ids),
            follower_orders.c.state == expect_state)
            .values(**values)
            .returning(follower_orders.c.fo_id, follower_orders.c.dispatch_attempts))
        return {r.fo_id: int(r.dispatch_attempts) for r in res.all()}

    async def open_counts(self, mo_ids: Iterable[str],
                          open_states: Iterable[str]) -> dict[str, int]:
        """Open children per manager order; orders with none open are absent."""
        ids = list(set(mo_ids))
        if not ids:
            return {}
        rows = await self._all(
            select(follower_orders.c.mo_id, func.count().label("n"))
            .where(self._among(follower_orders.c.mo_id, ids),
                   follower_orders.c.state.in_(list(open_states)))
            .group_by(follower_orders.c.mo_id))
        return {r["mo_id"]: int(r["n"]) for r in rows}

    async def dead_letters(self, tenant_id: str, *, since: datetime | None, limit: int,
                           vault_ids: Iterable[str] | None = None,
                           follower_id: str | None = None) -> list[Row]:
        """``vault_ids`` / ``follower_id``: the caller's narrowing, applied in the query so a
        narrowed caller's page is full and nothing outside it is ever read."""
        stmt = select(follower_orders).where(follower_orders.c.tenant_id == tenant_id,
                                             follower_orders.c.state == "dlq")
        if vault_ids is not None:
            stmt = stmt.where(follower_orders.c.vault_id.in_(list(vault_ids)))
        if follower_id is not None:
            stmt = stmt.where(follower_orders.c.follower_id == follower_id)
        if since is not None:
            stmt = stmt.where(follower_orders.c.dead_lettered_at >= since)
        return await self._all(stmt.order_by(follower_orders.c.dead_lettered_at,
                                             follower_orders.c.fo_id).limit(limit))

    async def awaiting_fills(self, limit: int) -> list[Row]:
        """Bridged children the broker accepted and has not finished filling."""
        return await self._all(select(follower_orders).where(
            follower_orders.c.state == "ack", follower_orders.c.broker_order_ref.is_not(None))
            .order_by(follower_orders.c.updated_at).limit(limit))



class OutboxLease(NamedTuple):
    """The lease a dispatch message was published for."""

    row_id: int
    number: int | None = None  # the row's ``attempts`` when leased
    until: datetime | None = None  # its ``locked_until`` then: names that one lease exactly


class OutboxRepository(_Repo):
    async def add_many(self, topic: str, items: Sequence[tuple[str, Mapping[str, Any]]],
                       now: datetime) -> None:
        if not items:
            return
        await self.conn.execute(insert(outbox), [
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
                        lease: timedelta) -> list[Row]:
        """Lease up to ``limit`` due rows; a worker that dies lets its lease lapse."""
        due = and_(outbox.c.topic == topic, outbox.c.done_at.is_(None),
                   outbox.c.available_at <= now,
                   or_(outbox.c.locked_until.is_(None), outbox.c.locked_until < now))
        candidates = await self._all(select(outbox.c.id).where(due)
                                     .order_by(outbox.c.available_at, outbox.c.id).limit(limit))
        if not candidates:
            return []
        # ``due`` again in the update: a row another worker leased meanwhile is not taken.
        claimed = await self._all(update(outbox).where(
            self._among(outbox.c.id, [c["id"] for c in candidates]), due)
            .values(locked_until=now + lease, attempts=outbox.c.attempts + 1)
            .returning(*outbox.c))
        return sorted(claimed, key=lambda r: (r["available_at"], r["id"]))

    async def take_many(self, leases: Sequence[OutboxLease], now: datetime,
                        lease: timedelta) -> list[Row]:
        """Renew the lease of each row that is still open, still leased and still on the
        lease its message names; the rows renewed. A lease is named by its number and, when
        the message carries it, its expiry at publication: renewing moves the expiry, so of
        two copies of one message (a redelivery while the first is being worked on) only
        the first takes the row. Without a number any live lease will do."""
        if not leases:
            return []
        named = [(x.row_id, x.number, x.until) for x in leases
                 if x.number is not None and x.until is not None]
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
        return await self._all(update(outbox).where(
            self._among(outbox.c.id, [x.row_id for x in leases]), or_(*which),
            outbox.c.done_at.is_(None), outbox.c.locked_until.is_not(None))
            .values(locked_until=now + lease).returning(*outbox.c))

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
        if rows:
            await self.conn.execute(insert(delivery_attempts), [dict(r) for r in rows])

    async def settle_many(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Record answers: each row carries ``fo_id``, ``attempt_no``, ``started_at`` and the
        outcome columns; the attempt's row is updated, or added if it is missing."""
        if not rows:
            return
        keys = {(r["fo_id"], r["attempt_no"]) for r in rows}
        # By fo_id alone (one index lookup per id); a (fo_id, attempt_no) row-value list
        # turns into an OR of index scans that PostgreSQL plans badly on big tables.
        found = {(r.fo_id, r.attempt_no) for r in (await self.conn.execute(
            select(delivery_attempts.c.fo_id, delivery_attempts.c.attempt_no).where(
                self._among(delivery_attempts.c.fo_id, {k[0] for k in keys})))).all()} & keys
        present = [r for r in rows if (r["fo_id"], r["attempt_no"]) in found]
        missing = [r for r in rows if (r["fo_id"], r["attempt_no"]) not in found]
        outcome_cols = ("status_code", "latency_ms", "response_excerpt", "error", "outcome")
        if present:
            await self.conn.execute(
                update(delivery_attempts).where(
                    delivery_attempts.c.fo_id == bindparam("k_fo"),
                    delivery_attempts.c.attempt_no == bindparam("k_no"))
                .values({c: bindparam(f"v_{c}") for c in outcome_cols}),
                [{"k_fo": r["fo_id"], "k_no": r["attempt_no"],
                  **{f"v_{c}": r[c] for c in outcome_cols}} for r in present])
        await self.add_many([{c: r[c] for c in ("fo_id", "attempt_no", "started_at",
                                                 *outcome_cols)} for r in missing])

    async def list(self, fo_id: str) -> list[Row]:
        return await self._all(select(delivery_attempts).where(delivery_attempts.c.fo_id == fo_id)
                               .order_by(delivery_attempts.c.attempt_no))


class AuditRepository(_Repo):
    def __init__(self, conn: AsyncConnection, clock: Clock) -> None:
        super().__init__(conn)
        self._clock = clock

    async def append(self, *, entity: str, entity_id: str, action: str, actor: str,
                     payload: Mapping[str, Any], tenant_id: str | None) -> AuditEvent:
        # Updating the single head row first takes its row lock, serializing appenders.
        res = await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                      .values(seq=audit_chain_head.c.seq))
        if res.rowcount == 0:
            await self.conn.execute(insert(audit_chain_head).values(id=1, seq=0,
                                                                    hash=GENESIS_HASH))
        head = await self._one(select(audit_chain_head).where(audit_chain_head.c.id == 1))
        assert head is not None
        ev = chain_event(prev_hash=head["hash"], seq=int(head["seq"]) + 1, event_id=new_id(),
                         entity=entity, entity_id=entity_id, action=action, actor=actor,
                         payload=payload, ts=iso(self._clock()))
        await self.conn.execute(insert(audit_events).values(
            event_id=ev.event_id, seq=ev.seq, tenant_id=tenant_id, entity=ev.entity,
            entity_id=ev.entity_id, action=ev.action, actor=ev.actor, payload=dict(ev.payload),
            ts=ev.ts, prev_hash=ev.prev_hash, hash=ev.hash))
        await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                .values(seq=ev.seq, hash=ev.hash))
        return ev

    async def append_many(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Several events in one round of statements (the request log's batches)."""
        if not events:
            return
        res = await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                      .values(seq=audit_chain_head.c.seq))
        if res.rowcount == 0:
            await self.conn.execute(insert(audit_chain_head).values(id=1, seq=0,
                                                                    hash=GENESIS_HASH))
        head = await self._one(select(audit_chain_head).where(audit_chain_head.c.id == 1))
        assert head is not None
        prev, seq, ts = head["hash"], int(head["seq"]), iso(self._clock())
        rows = []
        for e in events:
            seq += 1
            ev = chain_event(prev_hash=prev, seq=seq, event_id=new_id(), entity=e["entity"],
                             entity_id=e["entity_id"], action=e["action"], actor=e["actor"],
                             payload=e["payload"], ts=ts)
            rows.append({"event_id": ev.event_id, "seq": ev.seq, "tenant_id": e["tenant_id"],
                         "entity": ev.entity, "entity_id": ev.entity_id, "action": ev.action,
                         "actor": ev.actor, "payload": dict(ev.payload), "ts": ev.ts,
                         "prev_hash": ev.prev_hash, "hash": ev.hash})
            prev = ev.hash
        await self.conn.execute(insert(audit_events), rows)
        await self.conn.execute(update(audit_chain_head).where(audit_chain_head.c.id == 1)
                                .values(seq=seq, hash=prev))

    async def all(self) -> list[AuditEvent]:
        rows = await self._all(select(audit_events).order_by(audit_events.c.seq))
        return [AuditEvent(r["event_id"], int(r["seq"]), r["entity"], r["entity_id"],
                           r["action"], r["actor"], r["payload"], r["ts"], r["prev_hash"],
                           r["hash"]) for r in rows]

    async def feed(self, tenant_id: str, after_seq: int, entities: Sequence[str],
                   limit: int) -> list[Row]:
        """The tenant's events after ``after_seq``, in log order: a resumable stream."""
        return await self._all(select(audit_events).where(
            audit_events.c.tenant_id == tenant_id, audit_events.c.seq > after_seq,
            audit_events.c.entity.in_(list(entities))).order_by(audit_events.c.seq)
            .limit(limit))

    async def for_entity(self, tenant_id: str, entity_id: str) -> list[Row]:
        return await self._all(select(audit_events).where(
            audit_events.c.entity_id == entity_id, audit_events.c.tenant_id == tenant_id)
            .order_by(audit_events.c.seq))



class OverlayRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(vault_overlays).values(**row))

    async def active(self, vault_id: str, at: datetime) -> list[Row]:
        return await self._all(select(vault_overlays).where(
            vault_overlays.c.vault_id == vault_id, vault_overlays.c.state == "active",
            vault_overlays.c.applied_at <= at, vault_overlays.c.expires_at > at)
            .order_by(vault_overlays.c.overlay_id))

    async def list(self, tenant_id: str, vault_id: str) -> list[Row]:
        return await self._all(select(vault_overlays).where(
            vault_overlays.c.vault_id == vault_id, vault_overlays.c.tenant_id == tenant_id)
            .order_by(vault_overlays.c.applied_at, vault_overlays.c.overlay_id))

    async def due_for_revert(self, now: datetime, limit: int = 100) -> list[Row]:
        return await self._all(select(vault_overlays).where(
            vault_overlays.c.state == "active", vault_overlays.c.expires_at <= now)
            .order_by(vault_overlays.c.expires_at).limit(limit))

    async def mark_reverted(self, overlay_id: str, now: datetime) -> bool:
        res = await self.conn.execute(update(vault_overlays).where(
            vault_overlays.c.overlay_id == overlay_id, vault_overlays.c.state == "active")
            .values(state="reverted", reverted_at=now))
        return res.rowcount == 1


class NavRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(nav_observations).values(**row))

    async def history(self, entity: str, entity_ids: Sequence[str],
                      asof: datetime) -> dict[str, list[tuple[datetime, Decimal]]]:
        """Observations up to ``asof`` per entity, oldest first."""
        out: dict[str, list[tuple[datetime, Decimal]]] = {}
        ids = list(entity_ids)
        for i in range(0, len(ids), 500):
            rows = await self._all(select(nav_observations.c.entity_id, nav_observations.c.as_of,
                                          nav_observations.c.nav).where(
                nav_observations.c.entity == entity,
                nav_observations.c.entity_id.in_(ids[i:i + 500]),
                nav_observations.c.as_of <= asof)
                .order_by(nav_observations.c.as_of, nav_observations.c.id))
            for r in rows:
                out.setdefault(r["entity_id"], []).append((r["as_of"], r["nav"]))
        return out


class InstrumentRepository(_Repo):
    async def get(self, symbol: str, venue: str) -> Row | None:
        return await self._one(select(instruments).where(instruments.c.symbol == symbol,
                                                         instruments.c.venue == venue))

    async def upsert(self, row: Mapping[str, Any]) -> None:
        res = await self.conn.execute(update(instruments).where(
            instruments.c.symbol == row["symbol"], instruments.c.venue == row["venue"])
            .values(**row))
        if res.rowcount == 0:
            await self.conn.execute(insert(instruments).values(**row))

    async def list(self) -> list[Row]:
        return await self._all(select(instruments).order_by(instruments.c.venue,
                                                            instruments.c.symbol))


class FillRepository(_Repo):
    async def add_if_new(self, row: Mapping[str, Any]) -> bool:
        """Insert a fill unless its trade id is known: a report seen twice counts once."""
        if await self._one(select(fills.c.trade_id).where(fills.c.trade_id == row["trade_id"])):
            return False
        await self.conn.execute(insert(fills).values(**row))
        return True

    async def for_child(self, fo_id: str) -> list[Row]:
        return await self._all(select(fills).where(fills.c.fo_id == fo_id).order_by(fills.c.ts))


class SubscriptionRepository(_Repo):
    async def current(self, tenant_id: str) -> Row | None:
        return await self._one(select(subscriptions).where(
            subscriptions.c.tenant_id == tenant_id)
            .order_by(subscriptions.c.created_at.desc()).limit(1))

    async def by_provider_ref(self, ref: str) -> Row | None:
        return await self._one(select(subscriptions).where(subscriptions.c.provider_ref == ref))

    async def replace(self, tenant_id: str, row: Mapping[str, Any]) -> None:
        """One subscription row per tenant: the newest decision wins."""
        await self.conn.execute(delete(subscriptions).where(
            subscriptions.c.tenant_id == tenant_id))
        await self.conn.execute(insert(subscriptions).values(**row))

    async def update(self, subscription_id: str, **values: Any) -> None:
        await self.conn.execute(update(subscriptions).where(
            subscriptions.c.subscription_id == subscription_id).values(**values))


class UserRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(users).values(**row))

    async def count(self, tenant_id: str) -> int:
        r = await self._one(select(func.count().label("n")).select_from(users)
                            .where(users.c.tenant_id == tenant_id))
        return int(r["n"]) if r else 0

    async def list(self, tenant_id: str) -> list[Row]:
        return await self._all(select(users).where(users.c.tenant_id == tenant_id)
                               .order_by(users.c.created_at))

    async def by_sub(self, oidc_sub: str) -> Row | None:
        return await self._one(select(users).where(users.c.oidc_sub == oidc_sub))


class InvitationRepository(_Repo):
    async def add(self, row: Mapping[str, Any]) -> None:
        await self.conn.execute(insert(invitations).values(**row))

    async def pending(self, tenant_id: str, now: datetime) -> int:
        r = await self._one(select(func.count().label("n")).select_from(invitations).where(
            invitations.c.tenant_id == tenant_id, invitations.c.accepted_at.is_(None),
            invitations.c.expires_at > now))
        return int(r["n"]) if r else 0

    async def by_token_hash(self, token_hash: str) -> Row | None:
        return await self._one(select(invitations).where(
            invitations.c.token_hash == token_hash))

    async def accept(self, invitation_id: str, user_id: str, now: datetime) -> None:
        await self.conn.execute(update(invitations).where(
            invitations.c.invitation_id == invitation_id).values(accepted_at=now,
                                                                  user_id=user_id))

    async def list(self, tenant_id: str) -> list[Row]:
        return await self._all(select(invitations).where(invitations.c.tenant_id == tenant_id)
                               .order_by(invitations.c.created_at))
