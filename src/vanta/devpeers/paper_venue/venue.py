"""The paper venue's accounts: one :class:`PaperBroker` per account id, in process."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from aiohttp import web

from vanta.adapters.brokers.paper import PaperBroker, PaperSettings
from vanta.application.clock import Clock, utcnow
from vanta.devpeers.paper_venue.journal import COMPACT_SLACK, Journal
from vanta.devpeers.paper_venue.server import build_app
from vanta.devpeers.paper_venue.state import (
    Account,
    account_seed,
    catch_up,
    orders_of,
    plain,
    report,
)
from vanta.devpeers.paper_venue.wire import Problem, check_id


class PaperVenue:
    """One :class:`PaperBroker` per account id, optionally persisted to ``state_file``."""

    def __init__(self, template: PaperSettings | None = None, *,
                 state_file: Path | None = None, clock: Clock = utcnow,
                 submit_delay: timedelta = timedelta(0),
                 compact_slack: int = COMPACT_SLACK) -> None:
        self.template = template or PaperSettings(prices={})
        self.state_file = state_file
        self.submit_delay = submit_delay
        self._clock = clock
        self._accounts: dict[str, Account] = {}
        self._journal = None if state_file is None else Journal(
            state_file, compact_slack=compact_slack)
        if self._journal is not None:
            self._accounts.update(self._journal.load(clock))

    def open_account(self, account_id: str, *, cash: Decimal | None = None,
                     prices: Mapping[str, Decimal] | None = None,
                     seed: int | None = None) -> tuple[Account, bool]:
        """The account (created when new); ``True`` when it was created now. ``seed``
        overrides the per-account seed (in-process callers only)."""
        check_id(account_id, "account_id")
        existing = self._accounts.get(account_id)
        if existing is not None:
            return existing, False
        changes: dict[str, Any] = {
            "seed": account_seed(self.template.seed, account_id) if seed is None else seed}
        if cash is not None:
            changes["cash"] = cash
        if prices is not None:
            changes["prices"] = {**self.template.prices, **prices}
        account = Account(account_id, PaperBroker(replace(self.template, **changes),
                                                  clock=self._clock))
        self._accounts[account_id] = account
        self.persist([account_id])
        return account, True

    def account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise Problem(404, "account_not_found", f"no account {account_id}")
        return account

    def broker(self, account_id: str) -> PaperBroker:
        return self.account(account_id).broker

    def set_fault(self, account_id: str, status: int | None) -> None:
        """Every call on this account answers ``status`` (429 or 5xx) until ``None``."""
        if status is not None and status != 429 and not 500 <= status <= 599:
            raise ValueError("an injected fault is 429 or 5xx")
        self.account(account_id).fault_status = status

    @property
    def accounts(self) -> Mapping[str, Account]:
        return self._accounts

    def persist(self, account_ids: Iterable[str]) -> None:
        """Write these accounts' state to the state file (a no-op without one)."""
        if self._journal is not None:
            self._journal.save(self._accounts, account_ids)

    def app(self) -> web.Application:
        """The venue's HTTP API (see the package documentation)."""
        return build_app(self)

    def listing(self, *, summary: bool = False) -> dict[str, Any]:
        """What the admin endpoint answers: every order, grouped by client order id.

        ``summary`` returns the counts only, without moving any account's market clock (no
        fill figures), so it is cheap to poll."""
        if summary:
            return {"totals": self._counts()}
        rows: list[dict[str, Any]] = []
        by_cid: dict[str, dict[str, Any]] = {}
        moved = []
        for account_id, account in sorted(self._accounts.items()):
            if catch_up(account.broker):
                moved.append(account_id)
            for cid, placed in orders_of(account.broker).items():
                r = report(placed)
                submits = account.submits.get(cid, 0)
                rows.append({"account_id": account_id, "client_order_id": cid,
                             "broker_order_id": r.broker_order_id,
                             "symbol": r.symbol, "side": r.side.value,
                             "qty": plain(r.qty), "filled_qty": plain(r.filled_qty),
                             "status": r.status.value, "fills": len(r.fills),
                             "submits": submits})
                entry = by_cid.setdefault(cid, {"count": 0, "accounts": [], "submits": 0,
                                                "qty": Decimal(0), "filled_qty": Decimal(0)})
                entry["count"] += 1
                entry["accounts"].append(account_id)
                entry["submits"] += submits
                entry["qty"] += r.qty
                entry["filled_qty"] += r.filled_qty
        self.persist(moved)  # catching up moved these markets
        total_filled = sum((e["filled_qty"] for e in by_cid.values()), Decimal(0))
        for entry in by_cid.values():
            entry["qty"], entry["filled_qty"] = plain(entry["qty"]), plain(entry["filled_qty"])
        totals = {**self._counts(), "filled_qty": plain(total_filled)}
        return {"orders": rows, "by_client_order_id": by_cid, "totals": totals}

    def _counts(self) -> dict[str, int]:
        orders = submits = refused = resubmits = 0
        held: Counter[str] = Counter()
        for account in self._accounts.values():
            cids = orders_of(account.broker)
            orders += len(cids)
            held.update(cids.keys())
            for cid, n in account.submits.items():
                submits += n
                if cid in cids:
                    resubmits += n - 1
                else:
                    refused += 1
        return {"accounts": len(self._accounts), "orders": orders,
                "client_order_ids": len(held),
                "client_order_ids_held_twice": sum(1 for n in held.values() if n > 1),
                "submit_requests": submits, "resubmits": resubmits,
                "refused_client_order_ids": refused}
