"""Paper venue: the paper simulator as its own process, reached over HTTP.

The in-process :class:`~vanta.adapters.brokers.paper.PaperBroker` lives and dies with the
dispatcher that built it, so a dispatcher killed with SIGKILL takes the venue's orders with it
and "one order per child" cannot be checked across a crash. This module wraps one
``PaperBroker`` per *account* in a small aiohttp server (``vanta paper venue``); the platform
reaches it through :class:`~vanta.adapters.brokers.paper_remote.RemotePaperBroker`. Accounts,
orders and fills then outlive any dispatcher, and with a state file any venue restart too.

API (JSON; every quantity, price and amount is a **string** holding a decimal number, never a
JSON number; timestamps are RFC 3339 UTC)::

    GET  /healthz                                        {"ok": true}
    PUT  /v1/accounts/{account}                          open the account, idempotent
         {"cash": "100000"?, "prices": {"AAPL": "190"}?}  201 created / 200 already open (as is)
    GET  /v1/accounts/{account}                          {"account_id","cash","nav","positions",
                                                          "orders"}
    POST /v1/accounts/{account}/orders                   submit by client order id
         {"client_order_id","symbol","side","qty","tif"?,"limit_price"?}
         201 placed / 200 the id already names this order (same ack, "duplicate": true)
         ack: {"client_order_id","broker_order_id","status","submitted_at","duplicate"}
    GET  /v1/accounts/{account}/orders/{client_order_id} order report:
         {"client_order_id","broker_order_id","symbol","side","status","qty","filled_qty",
          "avg_price"|null,"reason"|null,"submitted_at",
          "fills": [{"trade_id","qty","price","ts"}]}
    POST /v1/accounts/{account}/orders/{client_order_id}/cancel   200 with the report (a no-op
                                                         on a finished order)
    GET  /v1/accounts/{account}/positions                {"positions": {"AAPL": "20"}}
    GET  /v1/accounts/{account}/nav                      {"nav": "...", "cash": "..."}
    PUT  /v1/accounts/{account}/prices/{symbol}          {"price": "190.00"}: mark the symbol

    GET  /v1/admin/orders[?summary=1]                    every order of every account
         (``summary``: only "totals", without "filled_qty", and no account's market clock
         moves, so it is cheap to poll):
         {"orders": [{"account_id","client_order_id","broker_order_id","symbol","side","qty",
                      "filled_qty","status","fills","submits"}],
          "by_client_order_id": {cid: {"count","accounts","submits","qty","filled_qty"}},
          "totals": {"accounts","orders","client_order_ids","client_order_ids_held_twice",
                     "submit_requests","resubmits","refused_client_order_ids",
                     "filled_qty"}}
    POST /v1/admin/accounts/{account}/step               {"ticks": 1}: advance the market now
    PUT  /v1/admin/accounts/{account}/fault              {"status": 503|429|500|null,
                                                          "lose_next_acks": 0}
    POST /v1/admin/accounts/{account}/orders/{cid}/reject {"reason"?}: late rejection

Path segments are percent-encoded (a client order id may hold any character). ``submits``
counts submit *requests* per client order id, so a test can tell a retried submit (count 2,
one order) from a second order (``count`` 2); ``resubmits`` totals the submits beyond the first
for ids the venue holds, ``refused_client_order_ids`` the ids submitted but never placed.

Errors are ``application/problem+json`` (RFC 9457) with a stable ``code``:

* 400 ``malformed_json`` / ``invalid_request`` (``field`` names the culprit; numbers given
  as JSON numbers are refused, so a float can never slip in);
* 404 ``account_not_found`` / ``order_not_found`` / ``route_not_found``; 405
  ``method_not_allowed``; 413 ``body_too_large`` (64 KiB);
* 422 the simulator's :class:`~vanta.application.brokers.BrokerRejected` codes
  (``insufficient_buying_power``, ``insufficient_qty``, ``unknown_symbol``, ``invalid_qty``,
  ``client_order_id_conflict``): terminal;
* 503 :class:`~vanta.application.brokers.BrokerUnavailable` (``outage``, ``injected``,
  ``ack_lost``: the order *was* placed but the answer is reported lost) with ``Retry-After``;
  an injected fault answers its own status with ``injected_fault`` (429 with
  ``Retry-After: 0``); 500 ``internal_error`` for a bug in the venue.

Accounts are created from a template :class:`~vanta.adapters.brokers.paper.PaperSettings`
(``cash`` and ``prices`` may be given when opening); each account's seed is the template's
seed mixed with a CRC-32 of the account id, so runs are reproducible.

``submit_delay`` holds every submit's answer back for a while *after* the venue acted (the
return leg of a slow network): a client that dies meanwhile leaves a placed order whose ack it
never saw, the case that makes idempotent resubmission matter.

**Persistence** (``state_file``): after every request that changed an account, the account's
complete state (settings, cash, positions, prices, orders with their fills, sequence counters,
the random generator's state, the tick clock's epoch) is appended to the file as one JSON line
before the answer leaves; the last line per account wins when the venue starts again. The file
is compacted (one line per account, written to a temporary file and renamed) when it starts and
whenever it grows to several times the number of accounts. A line cut short by a crash is
ignored, so a killed venue comes back with every order it acknowledged. Writes are not fsynced:
the state survives the process, not the machine. Injected faults are not persisted. The venue
reads the simulator's internals to do this; it is the paper module's sibling and is tested
against it (``tests/contract/test_paper_remote.py``).

There is no authentication: the venue binds 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import os
import random
import struct
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from pathlib import Path
from typing import Any

from aiohttp import web

from vanta.adapters.brokers.paper import PaperBroker, PaperSettings, _Order
from vanta.application.brokers import (
    BrokerAck,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    Fill,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.application.clock import Clock, utcnow
from vanta.domain.orders import Side, TimeInForce

log = logging.getLogger("vanta.paper_venue")

STATE_VERSION = 1
_COMPACT_FACTOR = 4
_COMPACT_SLACK = 1000
_MAX_STEP_TICKS = 10_000
_MAX_ID = 128
PROBLEM = "application/problem+json"
# the accounts a request touched: saved before its answer leaves
_TOUCHED: ContextVar[set[str]] = ContextVar("paper_venue_touched")


class Problem(Exception):
    """An error answer: ``status`` with a stable ``code``."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


def problem_response(p: Problem) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(p.status).phrase,
                            "status": p.status, "code": p.code, "detail": p.detail}
    if p.field is not None:
        body["field"] = p.field
    headers = {"Retry-After": p.retry_after} if p.retry_after is not None else None
    return web.Response(status=p.status, text=json.dumps(body), content_type=PROBLEM,
                        headers=headers)


# ------------------------------------------------------------------------------ accounts


@dataclass
class Account:
    account_id: str
    broker: PaperBroker
    submits: Counter[str] = field(default_factory=Counter)
    fault_status: int | None = None  # injected: every account call answers this (not saved)


def account_seed(template_seed: int, account_id: str) -> int:
    return (template_seed ^ zlib.crc32(account_id.encode())) & 0x7FFFFFFF


class PaperVenue:
    """One :class:`PaperBroker` per account id, optionally persisted to ``state_file``."""

    def __init__(self, template: PaperSettings | None = None, *,
                 state_file: Path | None = None, clock: Clock = utcnow,
                 submit_delay: timedelta = timedelta(0),
                 compact_slack: int = _COMPACT_SLACK) -> None:
        self.template = template or PaperSettings(prices={})
        self.state_file = state_file
        self.submit_delay = submit_delay
        self._compact_slack = compact_slack
        self._clock = clock
        self._accounts: dict[str, Account] = {}
        self._saved: dict[str, str] = {}  # account id -> last line written
        self._journal_lines = 0
        if state_file is not None:
            self._load()

    # ------------------------------------------------------------------ in-process use

    def open_account(self, account_id: str, *, cash: Decimal | None = None,
                     prices: Mapping[str, Decimal] | None = None,
                     seed: int | None = None) -> tuple[Account, bool]:
        """The account (created when new); ``True`` when it was created now. ``seed``
        overrides the per-account seed (in-process callers only)."""
        _check_id(account_id, "account_id")
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
        self._persist([account_id])
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
            ticks = account.broker._ticks
            _catch_up(account.broker)
            if account.broker._ticks != ticks:
                moved.append(account_id)
            for cid, placed in _orders(account.broker).items():
                report = _report(placed)
                rows.append({"account_id": account_id, "client_order_id": cid,
                             "broker_order_id": report.broker_order_id,
                             "symbol": report.symbol, "side": report.side.value,
                             "qty": _s(report.qty), "filled_qty": _s(report.filled_qty),
                             "status": report.status.value, "fills": len(report.fills),
                             "submits": account.submits.get(cid, 0)})
                entry = by_cid.setdefault(cid, {"count": 0, "accounts": [], "submits": 0,
                                                "qty": Decimal(0), "filled_qty": Decimal(0)})
                entry["count"] += 1
                entry["accounts"].append(account_id)
                entry["submits"] += account.submits.get(cid, 0)
                entry["qty"] += report.qty
                entry["filled_qty"] += report.filled_qty
        self._persist(moved)  # catching up moved these markets
        total_filled = sum((e["filled_qty"] for e in by_cid.values()), Decimal(0))
        for entry in by_cid.values():
            entry["qty"], entry["filled_qty"] = _s(entry["qty"]), _s(entry["filled_qty"])
        totals = {**self._counts(), "filled_qty": _s(total_filled)}
        return {"orders": rows, "by_client_order_id": by_cid, "totals": totals}

    def _counts(self) -> dict[str, int]:
        orders = submits = refused = resubmits = 0
        held: Counter[str] = Counter()
        for account in self._accounts.values():
            cids = _orders(account.broker)
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

    # ------------------------------------------------------------------------ HTTP app

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024)
        r = app.router
        r.add_get("/healthz", self._healthz)
        r.add_put("/v1/accounts/{account}", self._open)
        r.add_get("/v1/accounts/{account}", self._summary)
        r.add_post("/v1/accounts/{account}/orders", self._submit)
        r.add_get("/v1/accounts/{account}/orders/{cid}", self._order)
        r.add_post("/v1/accounts/{account}/orders/{cid}/cancel", self._cancel)
        r.add_get("/v1/accounts/{account}/positions", self._positions)
        r.add_get("/v1/accounts/{account}/nav", self._nav)
        r.add_put("/v1/accounts/{account}/prices/{symbol}", self._set_price)
        r.add_get("/v1/admin/orders", self._admin_orders)
        r.add_post("/v1/admin/accounts/{account}/step", self._admin_step)
        r.add_put("/v1/admin/accounts/{account}/fault", self._admin_fault)
        r.add_post("/v1/admin/accounts/{account}/orders/{cid}/reject", self._admin_reject)
        app.on_shutdown.append(self._on_shutdown)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
        touched: set[str] = set()
        token = _TOUCHED.set(touched)
        try:
            try:
                return await handler(request)
            finally:
                # before the answer leaves: what a client was told is on disk
                self._persist(touched)
                _TOUCHED.reset(token)
        except Problem as p:
            return problem_response(p)
        except BrokerRejected as e:
            return problem_response(Problem(422, e.code or "rejected", e.reason))
        except OrderNotFound as e:
            return problem_response(Problem(404, "order_not_found", e.reason))
        except BrokerUnavailable as e:
            return problem_response(Problem(503, e.code or "unavailable", e.reason,
                                            retry_after="1"))
        except web.HTTPException as e:  # no such route, method not allowed, body too big
            code = {404: "route_not_found", 405: "method_not_allowed",
                    413: "body_too_large"}.get(e.status, "http_error")
            return problem_response(Problem(e.status, code, e.reason))
        except Exception:
            log.exception("paper venue: request failed")
            return problem_response(Problem(500, "internal_error", "unexpected venue error"))

    def _use(self, request: web.Request) -> Account:
        account = self.account(request.match_info["account"])
        _TOUCHED.get().add(account.account_id)
        status = account.fault_status
        if status is not None:
            raise Problem(status, "injected_fault", f"paper venue: injected {status}",
                          retry_after="0" if status == 429 else "1")
        return account

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "accounts": len(self._accounts)})

    async def _open(self, request: web.Request) -> web.Response:
        body = await _body(request, optional=True)
        _only(body, {"cash", "prices"})
        cash = _decimal(body, "cash", required=False, positive=False)
        prices_raw = body.get("prices")
        prices: dict[str, Decimal] | None = None
        if prices_raw is not None:
            if not isinstance(prices_raw, dict):
                raise Problem(400, "invalid_request", "prices must be an object",
                              field="prices")
            prices = {str(s).upper(): _decimal(prices_raw, s, name=f"prices.{s}")
                      for s in prices_raw}
        account_id = request.match_info["account"]
        if account_id in self._accounts:
            self._use(request)  # an injected fault answers here too
        try:
            account, created = self.open_account(account_id, cash=cash, prices=prices)
        except ValueError as e:
            raise Problem(400, "invalid_request", str(e)) from None
        _TOUCHED.get().add(account_id)
        return web.json_response({**(await _summary_of(account)), "created": created},
                                 status=201 if created else 200)

    async def _summary(self, request: web.Request) -> web.Response:
        return web.json_response(await _summary_of(self._use(request)))

    async def _submit(self, request: web.Request) -> web.Response:
        account = self._use(request)
        body = await _body(request)
        _only(body, {"client_order_id", "symbol", "side", "qty", "tif", "limit_price"})
        cid = _text(body, "client_order_id")
        try:
            order = BrokerOrder(client_order_id=cid, symbol=_text(body, "symbol"),
                                side=Side(_text(body, "side")),
                                qty=_decimal(body, "qty"),
                                tif=TimeInForce(body.get("tif") or "day"),
                                limit_price=_decimal(body, "limit_price", required=False))
        except (ValueError, TypeError) as e:
            raise Problem(400, "invalid_request", f"invalid order: {e}") from None
        account.submits[cid] += 1
        existed = account.broker.order_count(cid) > 0
        ack = await account.broker.submit(order)
        if self.submit_delay > timedelta(0):
            self._persist(_TOUCHED.get())
            await asyncio.sleep(self.submit_delay.total_seconds())
        return web.json_response({**_ack_json(ack), "duplicate": existed},
                                 status=200 if existed else 201)

    async def _order(self, request: web.Request) -> web.Response:
        account = self._use(request)
        report = await account.broker.order_report(request.match_info["cid"])
        return web.json_response(_report_json(report, _orders(account.broker)))

    async def _cancel(self, request: web.Request) -> web.Response:
        account = self._use(request)
        cid = request.match_info["cid"]
        await account.broker.cancel(cid)
        report = await account.broker.order_report(cid)
        return web.json_response(_report_json(report, _orders(account.broker)))

    async def _positions(self, request: web.Request) -> web.Response:
        account = self._use(request)
        held = await account.broker.positions()
        return web.json_response({"positions": {s: _s(q) for s, q in held.items()}})

    async def _nav(self, request: web.Request) -> web.Response:
        account = self._use(request)
        nav = await account.broker.account_nav()
        return web.json_response({"nav": _s(nav), "cash": _s(account.broker.cash)})

    async def _set_price(self, request: web.Request) -> web.Response:
        account = self._use(request)
        body = await _body(request)
        _only(body, {"price"})
        price = _decimal(body, "price")
        symbol = request.match_info["symbol"].upper()
        if not symbol or len(symbol) > 64:
            raise Problem(400, "invalid_request", "symbol must be 1-64 characters",
                          field="symbol")
        account.broker.set_price(symbol, price)
        return web.json_response({"symbol": symbol, "price": _s(price)})

    async def _admin_orders(self, request: web.Request) -> web.Response:
        summary = request.query.get("summary", "") not in ("", "0", "false")
        return web.json_response(self.listing(summary=summary))

    async def _admin_step(self, request: web.Request) -> web.Response:
        account = self.account(request.match_info["account"])
        _TOUCHED.get().add(account.account_id)
        body = await _body(request, optional=True)
        _only(body, {"ticks"})
        ticks = body.get("ticks", 1)
        if not isinstance(ticks, int) or isinstance(ticks, bool) or \
                not 0 <= ticks <= _MAX_STEP_TICKS:
            raise Problem(400, "invalid_request", f"ticks must be 0-{_MAX_STEP_TICKS}",
                          field="ticks")
        account.broker.step(ticks)
        return web.json_response({"ticks": ticks})

    async def _admin_fault(self, request: web.Request) -> web.Response:
        account = self.account(request.match_info["account"])
        body = await _body(request)
        _only(body, {"status", "lose_next_acks"})
        status = body.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise Problem(400, "invalid_request", "status must be an integer or null",
                          field="status")
        try:
            self.set_fault(account.account_id, status)
        except ValueError as e:
            raise Problem(400, "invalid_request", str(e), field="status") from None
        lose = body.get("lose_next_acks", 0)
        if not isinstance(lose, int) or isinstance(lose, bool) or lose < 0:
            raise Problem(400, "invalid_request", "lose_next_acks must be >= 0",
                          field="lose_next_acks")
        if lose:
            account.broker.lose_next_ack(lose)
        return web.json_response({"status": status, "lose_next_acks": lose})

    async def _admin_reject(self, request: web.Request) -> web.Response:
        account = self.account(request.match_info["account"])
        _TOUCHED.get().add(account.account_id)
        body = await _body(request, optional=True)
        _only(body, {"reason"})
        cid = request.match_info["cid"]
        reason = body.get("reason") or "paper: rejected by the simulated venue"
        account.broker.reject_late(cid, str(reason))
        report = _report(_orders(account.broker)[cid])
        return web.json_response(_report_json(report, _orders(account.broker)))

    async def _on_shutdown(self, app: web.Application) -> None:
        self._persist(self._accounts)

    # --------------------------------------------------------------------- persistence

    def _persist(self, account_ids: Iterable[str]) -> None:
        if self.state_file is None:
            return
        lines = []
        for account_id in sorted(account_ids):
            account = self._accounts.get(account_id)
            if account is None:
                continue
            line = json.dumps({"v": STATE_VERSION, **_dump_account(account)},
                              separators=(",", ":"))
            if self._saved.get(account_id) != line:
                self._saved[account_id] = line
                lines.append(line)
        if not lines:
            return
        if self._journal_lines + len(lines) > \
                _COMPACT_FACTOR * len(self._accounts) + self._compact_slack:
            self._compact()
            return
        with self.state_file.open("a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        self._journal_lines += len(lines)

    def _compact(self) -> None:
        assert self.state_file is not None
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            f.write("".join(self._saved[a] + "\n" for a in sorted(self._saved)))
        os.replace(tmp, self.state_file)
        self._journal_lines = len(self._saved)

    def _load(self) -> None:
        assert self.state_file is not None
        if not self.state_file.exists():
            self.state_file.parent.mkdir(parents=True, exist_ok=True)
            self._compact()
            return
        latest: dict[str, dict[str, Any]] = {}
        text = self.state_file.read_text(encoding="utf-8")
        lines = text.splitlines()
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except ValueError:
                if n == len(lines) and not text.endswith("\n"):
                    log.warning("paper venue: ignoring a state line cut short by a crash")
                    continue
                raise ValueError(f"{self.state_file}:{n}: not a JSON line") from None
            if data.get("v") != STATE_VERSION:
                raise ValueError(f"{self.state_file}:{n}: unknown state version")
            latest[data["account_id"]] = data
        for account_id, data in latest.items():
            account = _load_account(data, self._clock)
            self._accounts[account_id] = account
            self._saved[account_id] = json.dumps({"v": STATE_VERSION, **_dump_account(account)},
                                                 separators=(",", ":"))
        self._compact()


# --------------------------------------------------------------------------- JSON helpers


def _s(d: Decimal) -> str:
    """A Decimal as a plain string, exactly (no exponent, no float on the way)."""
    return format(d, "f")


def _check_id(value: str, name: str) -> None:
    if not value or len(value) > _MAX_ID:
        raise Problem(400, "invalid_request", f"{name} must be 1-{_MAX_ID} characters",
                      field=name)


async def _body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise Problem(400, "malformed_json", "a JSON object is required")
    try:
        # numbers are parsed but refused below: decimal values travel as strings
        data = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise Problem(400, "malformed_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "malformed_json", "the body must be a JSON object")
    return data


def _only(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Problem(400, "invalid_request", f"unknown field {unknown[0]}", field=unknown[0])


def _text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise Problem(400, "invalid_request", f"{name} must be a non-empty string", field=name)
    return value


def _decimal(body: Mapping[str, Any], key: str, *, required: bool = True,
             positive: bool = True, name: str | None = None) -> Any:
    name = name or key
    value = body.get(key)
    if value is None:
        if required:
            raise Problem(400, "invalid_request", f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise Problem(400, "invalid_request",
                      f"{name} must be a decimal string, not a JSON {type(value).__name__}",
                      field=name)
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise Problem(400, "invalid_request", f"{name} is not a decimal number",
                      field=name) from None
    if not d.is_finite() or (d <= 0 if positive else d < 0):
        raise Problem(400, "invalid_request",
                      f"{name} must be {'positive' if positive else 'zero or more'}",
                      field=name)
    return d


def _ack_json(ack: BrokerAck) -> dict[str, Any]:
    return {"client_order_id": ack.client_order_id, "broker_order_id": ack.broker_order_id,
            "status": ack.status.value,
            "submitted_at": None if ack.submitted_at is None else ack.submitted_at.isoformat()}


def _report_json(report: OrderReport, orders: Mapping[str, _Order]) -> dict[str, Any]:
    placed = orders.get(report.client_order_id)
    return {"client_order_id": report.client_order_id,
            "broker_order_id": report.broker_order_id, "symbol": report.symbol,
            "side": report.side.value, "status": report.status.value, "qty": _s(report.qty),
            "filled_qty": _s(report.filled_qty),
            "avg_price": None if report.avg_price is None else _s(report.avg_price),
            "reason": report.reason,
            "submitted_at": None if placed is None else placed.submitted_at.isoformat(),
            "fills": [{"trade_id": f.trade_id, "qty": _s(f.qty), "price": _s(f.price),
                       "ts": f.ts.isoformat()} for f in report.fills]}


async def _summary_of(account: Account) -> dict[str, Any]:
    broker = account.broker
    positions = await broker.positions()
    nav = await broker.account_nav()
    return {"account_id": account.account_id, "cash": _s(broker.cash), "nav": _s(nav),
            "positions": {s: _s(q) for s, q in positions.items()},
            "orders": broker.order_count()}


# ------------------------------------------------------- the simulator's state, as JSON
# The paper broker keeps its state in private attributes; these helpers are the only place
# that reads or restores them.


def _orders(broker: PaperBroker) -> dict[str, _Order]:
    return broker._orders


def _catch_up(broker: PaperBroker) -> None:
    broker._catch_up()


def _report(placed: _Order) -> OrderReport:
    return PaperBroker._report(placed)


def _decs(values: Mapping[str, Decimal]) -> dict[str, str]:
    return {k: _s(v) for k, v in values.items()}


def _undecs(values: Mapping[str, str]) -> dict[str, Decimal]:
    return {k: Decimal(v) for k, v in values.items()}


def _td(value: timedelta | None) -> int | None:
    return None if value is None else value // timedelta(microseconds=1)


def _untd(value: int | None) -> timedelta | None:
    return None if value is None else timedelta(microseconds=value)


def _dump_rng(rng: random.Random) -> dict[str, Any]:
    version, internal, gauss = rng.getstate()
    packed = struct.pack(f"<{len(internal)}I", *internal)
    return {"version": version, "state": base64.b64encode(packed).decode(), "gauss": gauss}


def _load_rng(data: Mapping[str, Any]) -> random.Random:
    packed = base64.b64decode(data["state"])
    internal = struct.unpack(f"<{len(packed) // 4}I", packed)
    rng = random.Random()
    rng.setstate((data["version"], internal, data["gauss"]))
    return rng


def _dump_settings(s: PaperSettings) -> dict[str, Any]:
    return {"prices": _decs(s.prices), "cash": _s(s.cash), "positions": _decs(s.positions),
            "seed": s.seed, "volatility": _s(s.volatility), "tick_us": _td(s.tick),
            "latency_us": _td(s.latency), "fill_steps": list(s.fill_steps),
            "reject_probability": _s(s.reject_probability), "fee_rate": _s(s.fee_rate),
            "price_increment": _s(s.price_increment), "lot_steps": _decs(s.lot_steps),
            "allow_short": s.allow_short}


def _load_settings(d: Mapping[str, Any]) -> PaperSettings:
    lo, hi = d["fill_steps"]
    return PaperSettings(
        prices=_undecs(d["prices"]), cash=Decimal(d["cash"]), positions=_undecs(d["positions"]),
        seed=int(d["seed"]), volatility=Decimal(d["volatility"]), tick=_untd(d["tick_us"]),
        latency=_untd(d["latency_us"]) or timedelta(0), fill_steps=(int(lo), int(hi)),
        reject_probability=Decimal(d["reject_probability"]), fee_rate=Decimal(d["fee_rate"]),
        price_increment=Decimal(d["price_increment"]), lot_steps=_undecs(d["lot_steps"]),
        allow_short=bool(d["allow_short"]))


def _dump_order(o: _Order) -> dict[str, Any]:
    r = o.request
    return {"request": {"client_order_id": r.client_order_id, "symbol": r.symbol,
                        "side": r.side.value, "qty": _s(r.qty), "tif": r.tif.value,
                        "limit_price": None if r.limit_price is None else _s(r.limit_price)},
            "broker_order_id": o.broker_order_id, "submitted_at": o.submitted_at.isoformat(),
            "parts": [_s(p) for p in o.parts], "reject_on_first_tick": o.reject_on_first_tick,
            "status": o.status.value, "filled": _s(o.filled), "notional": _s(o.notional),
            "fills": [{"trade_id": f.trade_id, "qty": _s(f.qty), "price": _s(f.price),
                       "ts": f.ts.isoformat()} for f in o.fills],
            "reason": o.reason}


def _load_order(d: Mapping[str, Any]) -> _Order:
    r = d["request"]
    request = BrokerOrder(client_order_id=r["client_order_id"], symbol=r["symbol"],
                          side=Side(r["side"]), qty=Decimal(r["qty"]), tif=TimeInForce(r["tif"]),
                          limit_price=None if r["limit_price"] is None
                          else Decimal(r["limit_price"]))
    return _Order(request=request, broker_order_id=d["broker_order_id"],
                  submitted_at=datetime.fromisoformat(d["submitted_at"]),
                  parts=[Decimal(p) for p in d["parts"]],
                  reject_on_first_tick=bool(d["reject_on_first_tick"]),
                  status=OrderStatus(d["status"]), filled=Decimal(d["filled"]),
                  notional=Decimal(d["notional"]),
                  fills=[Fill(trade_id=f["trade_id"], qty=Decimal(f["qty"]),
                              price=Decimal(f["price"]), ts=datetime.fromisoformat(f["ts"]))
                         for f in d["fills"]],
                  reason=d["reason"])


def _dump_account(account: Account) -> dict[str, Any]:
    b = account.broker
    return {"account_id": account.account_id, "settings": _dump_settings(b.settings),
            "submits": dict(account.submits),
            "state": {"prices": _decs(b._prices), "positions": _decs(b._positions),
                      "cash": _s(b._cash), "order_seq": b._order_seq,
                      "trade_seq": b._trade_seq, "epoch": b._epoch.isoformat(),
                      "ticks": b._ticks, "clock_ticks": b._clock_ticks,
                      "submit_attempts": b.submit_attempts, "rng": _dump_rng(b._rng),
                      "orders": [_dump_order(o) for o in b._orders.values()]}}


def _load_account(data: Mapping[str, Any], clock: Clock) -> Account:
    b = PaperBroker(_load_settings(data["settings"]), clock=clock)
    s = data["state"]
    b._prices = _undecs(s["prices"])
    b._positions = _undecs(s["positions"])
    b._cash = Decimal(s["cash"])
    b._order_seq = int(s["order_seq"])
    b._trade_seq = int(s["trade_seq"])
    b._epoch = datetime.fromisoformat(s["epoch"])
    b._ticks = int(s["ticks"])
    b._clock_ticks = int(s["clock_ticks"])
    b.submit_attempts = int(s["submit_attempts"])
    b._rng = _load_rng(s["rng"])
    orders = [_load_order(o) for o in s["orders"]]
    b._orders = {o.request.client_order_id: o for o in orders}
    return Account(data["account_id"], b, Counter(data.get("submits") or {}))


# ------------------------------------------------------------------------------- serving


async def run_venue(venue: PaperVenue, sock: Any, *, stop: asyncio.Event,
                    ready: Callable[[int], None] | None = None) -> None:
    """Serve ``venue`` on an already bound socket until ``stop`` is set."""
    runner = web.AppRunner(venue.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        if ready is not None:
            ready(int(sock.getsockname()[1]))
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        venue._persist(venue.accounts)


__all__ = ["Account", "PaperVenue", "Problem", "account_seed", "run_venue"]
