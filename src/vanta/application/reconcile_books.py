"""Gathering what a reconciliation run reads: the manager's book, each follower's positions
(broker, report or derived), NAVs, thresholds and instruments.

Broker reads happen outside any transaction (a slow venue must not hold a database
connection); a venue that cannot be read leaves that follower's positions unknown, which
the plan reports as ``stale_positions`` and orders nothing for.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from vanta.application.followers import UNFOLLOWED, follower_spec
from vanta.application.ports.brokers import BrokerError, BrokerGateways
from vanta.application.ports.reconciliation import (
    PositionReportRecord,
    ReconcileUnitOfWork,
)
from vanta.application.ports.records_catalog import FollowerRecord, VaultRecord
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.snapshots import instrument_for
from vanta.domain.errors import NotFound
from vanta.domain.money import Instrument
from vanta.domain.navs import nav_state
from vanta.domain.reconciliation import (
    BROKER,
    DEFAULT_THRESHOLD_BPS,
    DERIVED,
    REPORTED,
    Book,
    Holding,
)
from vanta.domain.reconciliation_book import ChildLine, book_flows
from vanta.domain.sizing import NavState

log = logging.getLogger("vanta.reconcile")


@dataclass(frozen=True)
class VaultBook:
    """Everything read from the database for one run."""

    vault: VaultRecord
    followers: Sequence[FollowerRecord]
    holdings: Sequence[Holding]
    instruments: Mapping[str, Instrument]
    manager_nav: Decimal | None
    navs: Mapping[str, NavState]
    thresholds: Mapping[str, int]
    reports: Mapping[str, PositionReportRecord]
    children: Mapping[str, list[ChildOrderRecord]] = field(default_factory=dict)

    def threshold(self, follower_id: str, default: int = DEFAULT_THRESHOLD_BPS) -> int:
        t = self.thresholds
        return t.get(follower_id, t.get("", default))


async def read_vault_book(uow: ReconcileUnitOfWork, *, tenant_id: str, vault_id: str,
                          now: datetime) -> VaultBook:
    """One transaction's consistent read; the caller has opened ``uow``."""
    vault = await uow.vaults.get(tenant_id, vault_id)
    if vault is None:
        raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
    rows = [r for r in await uow.followers.list_for_vault(tenant_id, vault_id)
            if r.paused_reason != UNFOLLOWED]
    repo = uow.reconciliations
    symbols = await repo.vault_symbols(vault_id)
    holdings = [Holding(s, q, v, px) for s, (q, v, px) in sorted(symbols.items())]
    instruments = {h.symbol: await instrument_for(uow, h.symbol, h.venue) for h in holdings}
    ids = [r.follower_id for r in rows]
    hist = await uow.navs.history("follower", ids, now) if ids else {}
    navs = {fid: st for fid, h in hist.items() if (st := nav_state(h, now)) is not None}
    vhist = await uow.navs.history("vault", [vault_id], now)
    mstate = nav_state(vhist.get(vault_id, []), now)
    children: dict[str, list[ChildOrderRecord]] = {}
    for c in await repo.open_book(vault_id):
        children.setdefault(c.follower_id, []).append(c)
    return VaultBook(vault, rows, holdings, instruments, mstate.nav if mstate else None, navs,
                     await repo.thresholds(tenant_id, vault_id),
                     await repo.latest_reports(ids), children)


def _lines(children: Sequence[ChildOrderRecord]) -> list[ChildLine]:
    return [ChildLine(c.symbol, c.side, c.qty, c.filled_qty, c.state, c.created_at)
            for c in children]


@dataclass(frozen=True)
class BrokerView:
    positions: dict[str, Decimal] | None = None  # None: the broker could not be read
    nav: Decimal | None = None
    cash: Decimal | None = None


def _cash(balances: Mapping[str, Decimal]) -> Decimal | None:
    """The account's dollars (its one currency when it reports only one)."""
    if "USD" in balances:
        return balances["USD"]
    return next(iter(balances.values())) if len(balances) == 1 else None


async def _broker_view(brokers: BrokerGateways | None, follower: FollowerRecord) -> BrokerView:
    if brokers is None:
        return BrokerView()
    try:
        gw = brokers.for_follower(follower)
        return BrokerView(await gw.positions(), await gw.account_nav(),
                          _cash(await gw.balances()))
    except (BrokerError, ValueError) as e:
        log.warning("broker positions unavailable", extra={
            "follower_id": follower.follower_id, "error": str(e)})
        return BrokerView()


def _with_nav(state: NavState | None, nav: Decimal | None) -> NavState | None:
    """The broker's NAV as the current one; the stored history keeps peak and day start."""
    if nav is None:
        return state
    if state is None:
        return NavState(nav, nav, nav)
    return NavState(nav, max(state.peak, nav), state.day_start)


Progress = Callable[[int, int], None]  # (followers read, followers)


BROKER_READS = 16  # bridged accounts read at once


async def broker_views(vb: VaultBook, brokers: BrokerGateways | None,
                       progress: Progress | None = None) -> dict[str, BrokerView]:
    """Every bridged follower's broker, read concurrently (bounded): a vault of many bridged
    followers waits for the slowest few venues, not for their sum."""
    bridged = [f for f in vb.followers if f.bridged_brokers]
    slots = asyncio.Semaphore(BROKER_READS)
    done = 0

    async def read(f: FollowerRecord) -> tuple[str, BrokerView]:
        nonlocal done
        async with slots:
            view = await _broker_view(brokers, f)
        done += 1
        if progress is not None:
            progress(done, len(bridged))
        return f.follower_id, view

    if progress is not None:
        progress(0, len(bridged))
    return dict(await asyncio.gather(*(read(f) for f in bridged)))


def follower_books(vb: VaultBook, views: Mapping[str, BrokerView], *, now: datetime,
                   default_threshold: int = DEFAULT_THRESHOLD_BPS) -> list[Book]:
    """Each follower's book; ``views``: its broker's, for bridged followers (``broker_views``,
    whose ``progress(done, total)`` counts the accounts read)."""
    books: list[Book] = []
    for f in vb.followers:
        lines = _lines(vb.children.get(f.follower_id, []))
        nav = vb.navs.get(f.follower_id)
        positions: Mapping[str, Decimal]
        cash = None
        if f.bridged_brokers:
            view = views.get(f.follower_id, BrokerView())  # bridged since the broker read
            source, as_of = BROKER, (now if view.positions is not None else None)
            positions, nav = view.positions or {}, _with_nav(nav, view.nav)
            cash = view.cash
            flows = book_flows(lines, BROKER)
        elif (report := vb.reports.get(f.follower_id)) is not None:
            source, as_of = REPORTED, report.as_of
            positions = {s: Decimal(q) for s, q in report.positions.items()}
            flows = book_flows(lines, REPORTED, report.as_of)
        else:
            source, as_of = DERIVED, None
            flows = book_flows(lines, DERIVED)
            positions = flows.derived
        books.append(Book(follower_spec(f), positions, source, as_of, flows.pending, nav,
                          vb.threshold(f.follower_id, default_threshold),
                          flows.pending_sells, cash))
    return books
