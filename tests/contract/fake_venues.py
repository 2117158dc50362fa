"""Small stateful fakes of three broker APIs, served by aiohttp on 127.0.0.1 (port 0).

Each fake answers the documented paths with the documented field names, status codes and error
bodies of its venue, keeps orders, executions, positions and cash, and exposes test controls:

* ``execute(client_order_id, qty, price)`` - the venue executes part of an order;
* ``reject_late(client_order_id, reason)`` - the venue rejects an order it had accepted;
* ``outage = 503`` - every request is answered with that status until reset to ``None``;
* ``lose_next_ack()`` - the next order placement is carried out, then answered with
  ``504 Gateway Timeout`` (a proxy giving up after the venue acted);
* ``orders_with(client_order_id)`` - how many orders the venue holds for that client id.

Deliberate simplifications, shared by all three: no market hours, no fees or commissions,
accounts are cash accounts (buying power = cash minus open buy orders), executions happen only
when a test calls ``execute`` (except Coinbase market IOC orders, which fill at once at the mark
price), and every list fits the venue's first page unless a test adds enough orders to page.
Venue-specific deviations are listed in each class's docstring.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import jwt
from aiohttp import web

ZERO = Decimal(0)
_EIGHT = Decimal("0.00000001")
_DEC_MARK = "\u0000dec:"


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(ts: datetime, places: int = 6) -> str:
    text = ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text[: len(text) - (6 - places)] + "Z"


def _s(d: Decimal | None) -> str | None:
    """Decimal as the string a JSON API would carry ('190.5', '0')."""
    if d is None:
        return None
    return format(d.normalize(), "f") if d != 0 else "0"


def _vwap(notional: Decimal, qty: Decimal) -> Decimal:
    avg = notional / qty
    return avg if len(avg.as_tuple().digits) < 20 else avg.quantize(Decimal("1e-10"))


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


def _raw_number_json(data: Any, status: int = 200) -> web.Response:
    """JSON where Decimals are written as bare numbers (Tradier's XML-derived JSON)."""

    def mark(o: Any) -> Any:
        if isinstance(o, Decimal):
            return f"{_DEC_MARK}{format(o, 'f')}"
        raise TypeError(type(o))

    text = json.dumps(data, default=mark)
    text = re.sub(r'"\\u0000dec:([-0-9.]+)"', r"\1", text)
    return web.Response(status=status, text=text, content_type="application/json")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: str


class FakeVenue:
    """aiohttp plumbing, request log and fault injection shared by the fakes."""

    name = "venue"

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.outage: int | None = None
        self._lose_acks = 0
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> str:
        app = web.Application(middlewares=[self._middleware])
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None and server.sockets
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def routes(self, app: web.Application) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def authorized(self, request: web.Request) -> web.Response | None:
        """``None`` when the credentials are right, else the venue's refusal."""
        return None

    def lose_next_ack(self, count: int = 1) -> None:
        self._lose_acks += count

    def _take_lost_ack(self) -> bool:
        if self._lose_acks > 0:
            self._lose_acks -= 1
            return True
        return False

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.text()
        self.requests.append(Recorded(request.method, request.path,
                                      {k: request.query.getall(k) for k in request.query},
                                      dict(request.headers), body))
        if self.outage is not None:
            return web.Response(status=self.outage, text="Service Unavailable",
                                content_type="text/plain")
        refusal = self.authorized(request)
        if refusal is not None:
            return refusal
        return await handler(request)

    @staticmethod
    def lost_ack() -> web.Response:
        return web.Response(status=504, text="Gateway Timeout", content_type="text/plain")


# ====================================================================================== Alpaca


@dataclass
class _AlpacaOrder:
    data: dict[str, Any]
    notional: Decimal = ZERO

    @property
    def open(self) -> bool:
        return self.data["status"] in ("new", "accepted", "pending_new", "partially_filled")


class FakeAlpaca(FakeVenue):
    """Alpaca Trading API v2 (paper), the parts the adapter uses.

    Follows the public reference: order/position/account/activity objects with their field
    names and string-encoded numbers; ``422 {"code":40010001,"message":"client_order_id must
    be unique"}`` for a reused client order id; ``403 {"code":40310000,"message":"insufficient
    buying power"}``; ``404`` for unknown orders; ``DELETE`` answers ``204`` or ``422`` when the
    order can no longer be cancelled; activities filter by ``order_id`` and page with
    ``page_token``/``page_size``/``direction``; ``401`` without the two ``APCA-API-*`` headers.

    Deviations: a new order answers ``accepted`` and then reads ``new``; accounts are cash
    accounts (multiplier 1, no shorting); exact 4xx message texts other than the two above are
    paraphrased; only ``qty`` orders (no ``notional``), no order classes, no extended hours.
    """

    name = "alpaca"

    def __init__(self, *, key_id: str, secret_key: str, cash: Decimal,
                 prices: dict[str, Decimal]) -> None:
        super().__init__()
        self.key_id, self.secret_key = key_id, secret_key
        self.cash = cash
        self.prices = dict(prices)
        self.orders: dict[str, _AlpacaOrder] = {}
        self.activities: list[dict[str, Any]] = []
        self.holdings: dict[str, list[Decimal]] = {}  # symbol -> [qty, cost]
        self.account_id = str(uuid.uuid4())
        self._seq = itertools.count(1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v2/orders", self.create_order)
        app.router.add_get("/v2/orders:by_client_order_id", self.get_by_client_id)
        app.router.add_get("/v2/orders/{order_id}", self.get_order)
        app.router.add_delete("/v2/orders/{order_id}", self.cancel_order)
        app.router.add_get("/v2/positions", self.get_positions)
        app.router.add_get("/v2/account", self.get_account)
        app.router.add_get("/v2/account/activities/{activity_type}", self.get_activities)

    def authorized(self, request: web.Request) -> web.Response | None:
        if (request.headers.get("APCA-API-KEY-ID") == self.key_id
                and request.headers.get("APCA-API-SECRET-KEY") == self.secret_key):
            return None
        return _json({"code": 40110000, "message": "request is not authorized"}, 401)

    # ------------------------------------------------------------------ API

    async def create_order(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return _json({"code": 40010000, "message": "request body format is invalid"}, 400)
        error = self._validate(body)
        if error is not None:
            return error
        cid = body.get("client_order_id") or str(uuid.uuid4())
        if any(o.data["client_order_id"] == cid for o in self.orders.values()):
            return _json({"code": 40010001, "message": "client_order_id must be unique"}, 422)
        symbol, side = body["symbol"].upper(), body["side"]
        qty = Decimal(str(body["qty"]))
        limit = Decimal(str(body["limit_price"])) if body.get("limit_price") else None
        if side == "buy":
            cost = qty * (limit or self.prices[symbol])
            if cost > self._buying_power():
                return _json({"code": 40310000, "message": "insufficient buying power"}, 403)
        else:
            available = self._held(symbol) - sum(
                (Decimal(o.data["qty"]) - Decimal(o.data["filled_qty"])
                 for o in self.orders.values()
                 if o.open and o.data["side"] == "sell" and o.data["symbol"] == symbol), ZERO)
            if qty > available:
                return _json({"code": 40310000, "message":
                              f"insufficient qty available for order (requested: {_s(qty)}, "
                              f"available: {_s(max(available, ZERO))})"}, 403)
        now = _iso(_now())
        order = {
            "id": str(uuid.uuid4()), "client_order_id": cid, "created_at": now,
            "updated_at": now, "submitted_at": now, "filled_at": None, "expired_at": None,
            "canceled_at": None, "failed_at": None, "replaced_at": None, "replaced_by": None,
            "replaces": None, "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)),
            "symbol": symbol, "asset_class": "us_equity", "notional": None, "qty": _s(qty),
            "filled_qty": "0", "filled_avg_price": None, "order_class": "",
            "order_type": body["type"], "type": body["type"], "side": side,
            "position_intent": "buy_to_open" if side == "buy" else "sell_to_close",
            "time_in_force": body["time_in_force"], "limit_price": _s(limit),
            "stop_price": None, "status": "accepted", "extended_hours": False, "legs": None,
            "trail_percent": None, "trail_price": None, "hwm": None,
        }
        self.orders[order["id"]] = _AlpacaOrder(order)
        answer = dict(order)
        order["status"] = "new"
        if self._take_lost_ack():
            return self.lost_ack()
        return _json(answer)

    def _validate(self, body: Any) -> web.Response | None:
        def bad(message: str) -> web.Response:
            return _json({"code": 40010001, "message": message}, 422)

        if not isinstance(body, dict):
            return bad("invalid order request")
        for name in ("symbol", "side", "type", "time_in_force"):
            if not body.get(name):
                return bad(f"{name} is required")
        if str(body["symbol"]).upper() not in self.prices:
            return bad(f"asset \"{body['symbol']}\" not found")
        if body["side"] not in ("buy", "sell"):
            return bad("invalid side")
        if body["type"] not in ("market", "limit", "stop", "stop_limit", "trailing_stop"):
            return bad("invalid order type")
        if body["time_in_force"] not in ("day", "gtc", "opg", "cls", "ioc", "fok"):
            return bad("invalid time_in_force")
        if not isinstance(body.get("qty"), str | int):
            return bad("qty is required")
        try:
            qty = Decimal(str(body["qty"]))
        except ArithmeticError:
            return bad("invalid qty")
        if not qty.is_finite() or qty <= 0:
            return bad("qty must be > 0")
        if body["type"] == "limit" and not body.get("limit_price"):
            return bad("limit_price is required for limit orders")
        if len(str(body.get("client_order_id") or "")) > 128:
            return bad("client_order_id must be no more than 128 characters")
        return None

    async def get_by_client_id(self, request: web.Request) -> web.Response:
        cid = request.query.get("client_order_id", "")
        for o in self.orders.values():
            if o.data["client_order_id"] == cid:
                return _json(o.data)
        return _json({"code": 40410000, "message": "order not found"}, 404)

    async def get_order(self, request: web.Request) -> web.Response:
        o = self.orders.get(request.match_info["order_id"])
        if o is None:
            return _json({"code": 40410000, "message": "order not found"}, 404)
        return _json(o.data)

    async def cancel_order(self, request: web.Request) -> web.Response:
        o = self.orders.get(request.match_info["order_id"])
        if o is None:
            return _json({"code": 40410000, "message": "order not found"}, 404)
        if not o.open:
            return _json({"code": 42210000, "message": "order is not cancelable"}, 422)
        now = _iso(_now())
        o.data.update(status="canceled", canceled_at=now, updated_at=now)
        return web.Response(status=204)

    async def get_positions(self, request: web.Request) -> web.Response:
        out = []
        for symbol, (qty, cost) in sorted(self.holdings.items()):
            if qty == 0:
                continue
            price = self.prices[symbol]
            value = qty * price
            out.append({
                "asset_id": str(uuid.uuid5(uuid.NAMESPACE_DNS, symbol)), "symbol": symbol,
                "exchange": "NASDAQ", "asset_class": "us_equity", "asset_marginable": True,
                "qty": _s(qty), "qty_available": _s(qty), "avg_entry_price": _s(cost / qty),
                "side": "long" if qty > 0 else "short", "market_value": _s(value),
                "cost_basis": _s(cost), "unrealized_pl": _s(value - cost),
                "unrealized_plpc": _s((value - cost) / cost) if cost else "0",
                "unrealized_intraday_pl": _s(value - cost),
                "unrealized_intraday_plpc": _s((value - cost) / cost) if cost else "0",
                "current_price": _s(price), "lastday_price": _s(price), "change_today": "0",
            })
        return _json(out)

    async def get_account(self, request: web.Request) -> web.Response:
        long_value = sum((q * self.prices[s] for s, (q, _) in self.holdings.items()), ZERO)
        equity = self.cash + long_value
        bp = _s(self._buying_power())
        return _json({
            "id": self.account_id, "account_number": "PA3FAKE0001", "status": "ACTIVE",
            "crypto_status": "INACTIVE", "currency": "USD", "buying_power": bp,
            "regt_buying_power": bp, "daytrading_buying_power": "0",
            "non_marginable_buying_power": bp, "cash": _s(self.cash), "accrued_fees": "0",
            "pending_transfer_in": "0", "portfolio_value": _s(equity),
            "pattern_day_trader": False, "trading_blocked": False, "transfers_blocked": False,
            "account_blocked": False, "created_at": "2024-01-02T15:04:05.000000Z",
            "trade_suspended_by_user": False, "multiplier": "1", "shorting_enabled": False,
            "equity": _s(equity), "last_equity": _s(equity),
            "long_market_value": _s(long_value), "short_market_value": "0",
            "initial_margin": "0", "maintenance_margin": "0", "last_maintenance_margin": "0",
            "sma": "0", "daytrade_count": 0,
        })

    async def get_activities(self, request: web.Request) -> web.Response:
        kind = request.match_info["activity_type"]
        if kind != "FILL":
            return _json([])
        q = request.query
        try:
            size = min(int(q.get("page_size", "100")), 100)
        except ValueError:
            return _json({"code": 40010001, "message": "invalid page_size"}, 422)
        rows = [a for a in self.activities
                if not q.get("order_id") or a["order_id"] == q["order_id"]]
        rows.sort(key=lambda a: a["id"], reverse=q.get("direction", "desc") == "desc")
        token = q.get("page_token")
        if token:
            ids = [a["id"] for a in rows]
            rows = rows[ids.index(token) + 1:] if token in ids else []
        return _json(rows[:size])

    # ------------------------------------------------------------ controls

    def _find(self, client_order_id: str) -> _AlpacaOrder:
        return next(o for o in self.orders.values()
                    if o.data["client_order_id"] == client_order_id)

    def orders_with(self, client_order_id: str) -> int:
        return sum(1 for o in self.orders.values()
                   if o.data["client_order_id"] == client_order_id)

    def execute(self, client_order_id: str, qty: Decimal, price: Decimal) -> None:
        o = self._find(client_order_id)
        d = o.data
        filled = Decimal(d["filled_qty"]) + qty
        assert o.open and filled <= Decimal(d["qty"]), "execution beyond the order"
        o.notional += qty * price
        now = _now()
        done = filled == Decimal(d["qty"])
        d.update(filled_qty=_s(filled), filled_avg_price=_s(_vwap(o.notional, filled)),
                 status="filled" if done else "partially_filled", updated_at=_iso(now),
                 filled_at=_iso(now) if done else None)
        seq = next(self._seq)
        self.activities.append({
            "id": f"{now:%Y%m%d%H%M%S}{seq:03d}::{uuid.uuid4()}",
            "activity_type": "FILL", "transaction_time": _iso(now),
            "type": "fill" if done else "partial_fill", "price": _s(price), "qty": _s(qty),
            "side": d["side"], "symbol": d["symbol"],
            "leaves_qty": _s(Decimal(d["qty"]) - filled), "order_id": d["id"],
            "cum_qty": _s(filled), "order_status": d["status"],
        })
        sign = 1 if d["side"] == "buy" else -1
        held = self.holdings.setdefault(d["symbol"], [ZERO, ZERO])
        if sign > 0:
            held[0] += qty
            held[1] += qty * price
        else:
            held[1] -= held[1] / held[0] * qty if held[0] else ZERO
            held[0] -= qty
        self.cash -= sign * qty * price

    def reject_late(self, client_order_id: str, reason: str = "rejected") -> None:
        o = self._find(client_order_id)
        now = _iso(_now())
        o.data.update(status="rejected", failed_at=now, updated_at=now)

    def _held(self, symbol: str) -> Decimal:
        return self.holdings.get(symbol, [ZERO, ZERO])[0]

    def _buying_power(self) -> Decimal:
        reserved = ZERO
        for o in self.orders.values():
            d = o.data
            if o.open and d["side"] == "buy":
                price = Decimal(d["limit_price"]) if d["limit_price"] else self.prices[d["symbol"]]
                reserved += (Decimal(d["qty"]) - Decimal(d["filled_qty"])) * price
        return self.cash - reserved


# ===================================================================================== Tradier


@dataclass
class _TradierOrder:
    data: dict[str, Any]
    tag: str | None
    notional: Decimal = ZERO

    @property
    def open(self) -> bool:
        return self.data["status"] in ("pending", "open", "partially_filled")


class FakeTradier(FakeVenue):
    """Tradier Brokerage API (sandbox), the parts the adapter uses.

    Follows the public reference: form-encoded placement answering
    ``{"order": {"id": …, "status": "ok", "partner_id": …}}``; validation and buying-power
    refusals as ``400 {"errors": {"error": [...]}}``; orders, positions and balances in
    Tradier's XML-shaped JSON (``"null"`` for none, an object for one, a list for many, bare
    JSON numbers); ``tag`` only returned with ``includeTags=true``; ``page``/``limit`` paging
    (default limit 25); XML unless ``Accept: application/json``; ``401 Invalid Access Token``.
    Like Tradier, it does **not** enforce unique tags: a second placement with the same tag
    creates a second order.

    Deviations: orders become ``open`` at once; the buying-power refusal text is the
    ``DayTradingBuyingPowerExceeded`` code from Tradier's error table; the cancel refusal and
    unknown-order texts are paraphrased; ``reason_description`` is set on late rejections.
    """

    name = "tradier"

    def __init__(self, *, token: str, account_id: str, cash: Decimal,
                 prices: dict[str, Decimal]) -> None:
        super().__init__()
        self.token, self.account_id = token, account_id
        self.cash = cash
        self.prices = dict(prices)
        self.orders: dict[int, _TradierOrder] = {}
        self.holdings: dict[str, list[Decimal]] = {}
        self._ids = itertools.count(228175)
        self._position_ids = itertools.count(130089)

    def routes(self, app: web.Application) -> None:
        base = "/v1/accounts/{account_id}"
        app.router.add_post(f"{base}/orders", self.create_order)
        app.router.add_get(f"{base}/orders", self.list_orders)
        app.router.add_get(f"{base}/orders/{{order_id}}", self.get_order)
        app.router.add_delete(f"{base}/orders/{{order_id}}", self.cancel_order)
        app.router.add_get(f"{base}/positions", self.get_positions)
        app.router.add_get(f"{base}/balances", self.get_balances)

    def authorized(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=401, text="Invalid Access Token",
                                content_type="text/plain")
        if request.match_info.get("account_id", self.account_id) != self.account_id:
            return self._errors(["Account not found"], 400)
        if "application/json" not in request.headers.get("Accept", ""):
            return web.Response(status=200, text='<?xml version="1.0" encoding="UTF-8"?>'
                                "<response/>", content_type="application/xml")
        return None

    @staticmethod
    def _errors(messages: list[str], status: int = 400) -> web.Response:
        return _raw_number_json({"errors": {"error": messages}}, status)

    # ------------------------------------------------------------------ API

    async def create_order(self, request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return self._errors(["Invalid content type"])
        form = {k: v[-1] for k, v in parse_qs(await request.text()).items()}
        problems = self._validate(form)
        if problems:
            return self._errors(problems)
        symbol, side = form["symbol"].upper(), form["side"]
        qty = Decimal(form["quantity"])
        limit = Decimal(form["price"]) if form.get("price") else None
        if side in ("buy", "buy_to_cover"):
            if qty * (limit or self.prices[symbol]) > self._buying_power():
                return self._errors(["Backoffice rejected override of the order.",
                                     "DayTradingBuyingPowerExceeded"])
        elif qty > self._held(symbol) - self._open_sells(symbol):
            return self._errors(["Backoffice rejected override of the order.",
                                 "Unexpected SellShortOrder"])
        order_id = next(self._ids)
        now = _iso(_now(), 3)
        data: dict[str, Any] = {
            "id": order_id, "type": form["type"], "symbol": symbol, "side": side,
            "quantity": qty, "status": "open", "duration": form["duration"],
            "avg_fill_price": ZERO, "exec_quantity": ZERO, "last_fill_price": ZERO,
            "last_fill_quantity": ZERO, "remaining_quantity": qty, "create_date": now,
            "transaction_date": now, "class": "equity",
        }
        if limit is not None:
            data["price"] = limit
        self.orders[order_id] = _TradierOrder(data, form.get("tag"))
        if self._take_lost_ack():
            return self.lost_ack()
        return _raw_number_json({"order": {"id": order_id, "status": "ok",
                                           "partner_id": str(uuid.uuid4())}})

    def _validate(self, form: dict[str, str]) -> list[str]:
        problems = []
        if form.get("class") != "equity":
            problems.append("Invalid Parameter: class")
        if form.get("symbol", "").upper() not in self.prices:
            problems.append(f"Invalid Parameter: symbol {form.get('symbol', '')}")
        if form.get("side") not in ("buy", "buy_to_cover", "sell", "sell_short"):
            problems.append("Invalid Parameter: side")
        if form.get("type") not in ("market", "limit", "stop", "stop_limit"):
            problems.append("Invalid Parameter: type")
        if form.get("duration") not in ("day", "gtc", "pre", "post"):
            problems.append("Invalid Parameter: duration")
        if not re.fullmatch(r"[1-9][0-9]*", form.get("quantity", "")):
            problems.append("Invalid Parameter: quantity")
        if form.get("type") in ("limit", "stop_limit") and not form.get("price"):
            problems.append("Missing Parameter: price")
        tag = form.get("tag")
        if tag is not None and not re.fullmatch(r"[A-Za-z0-9.\-]{1,255}", tag):
            problems.append("Invalid Parameter: tag")
        return problems

    def _view(self, o: _TradierOrder, include_tags: bool) -> dict[str, Any]:
        data = dict(o.data)
        for key in ("quantity", "exec_quantity", "last_fill_quantity", "remaining_quantity"):
            data[key] = data[key].quantize(_EIGHT)  # Tradier writes 50.00000000
        if include_tags and o.tag is not None:
            data["tag"] = o.tag
        return data

    async def list_orders(self, request: web.Request) -> web.Response:
        q = request.query
        try:
            page, limit = int(q.get("page", "1")), int(q.get("limit", "25"))
        except ValueError:
            return self._errors(["Invalid Parameter: page"])
        include = q.get("includeTags") == "true"
        rows = [self._view(o, include) for _, o in sorted(self.orders.items())]
        rows = rows[(page - 1) * limit: page * limit]
        if not rows:
            return _raw_number_json({"orders": "null"})
        return _raw_number_json({"orders": {"order": rows[0] if len(rows) == 1 else rows}})

    async def get_order(self, request: web.Request) -> web.Response:
        o = self._by_id(request.match_info["order_id"])
        if o is None:
            return self._errors(["Order not found"], 404)
        return _raw_number_json({"order": self._view(o, request.query.get("includeTags")
                                                     == "true")})

    async def cancel_order(self, request: web.Request) -> web.Response:
        o = self._by_id(request.match_info["order_id"])
        if o is None:
            return self._errors(["Order not found"], 404)
        if not o.open:
            return self._errors([f"Order {o.data['id']} is not in a cancelable state"])
        o.data.update(status="canceled", transaction_date=_iso(_now(), 3),
                      remaining_quantity=ZERO)
        return _raw_number_json({"order": {"id": o.data["id"], "status": "ok"}})

    async def get_positions(self, request: web.Request) -> web.Response:
        rows = [{"cost_basis": cost, "date_acquired": "2024-01-02T14:41:11.405Z",
                 "id": pid, "quantity": qty.quantize(_EIGHT), "symbol": symbol}
                for symbol, (qty, cost, pid) in sorted(
                    (s, (h[0], h[1], h[2])) for s, h in self.holdings.items()) if qty != 0]
        if not rows:
            return _raw_number_json({"positions": "null"})
        return _raw_number_json(
            {"positions": {"position": rows[0] if len(rows) == 1 else rows}})

    async def get_balances(self, request: web.Request) -> web.Response:
        long_value = sum((h[0] * self.prices[s] for s, h in self.holdings.items()), ZERO)
        cost = sum((h[1] for h in self.holdings.values()), ZERO)
        total = self.cash + long_value
        return _raw_number_json({"balances": {
            "option_short_value": ZERO, "total_equity": total,
            "account_number": self.account_id, "account_type": "cash",
            "close_pl": ZERO, "current_requirement": ZERO, "equity": ZERO,
            "long_market_value": long_value, "market_value": long_value,
            "open_pl": long_value - cost, "option_long_value": ZERO,
            "option_requirement": ZERO,
            "pending_orders_count": sum(1 for o in self.orders.values() if o.open),
            "short_market_value": ZERO, "stock_long_value": long_value,
            "total_cash": self.cash, "uncleared_funds": ZERO, "pending_cash": ZERO,
            "cash": {"cash_available": self._buying_power(), "sweep": ZERO,
                     "unsettled_funds": ZERO},
        }})

    # ------------------------------------------------------------ controls

    def _by_id(self, raw: str) -> _TradierOrder | None:
        return self.orders.get(int(raw)) if raw.isdigit() else None

    def _find(self, tag: str) -> _TradierOrder:
        return next(o for o in self.orders.values() if o.tag == tag)

    def orders_with(self, client_order_id: str) -> int:
        return sum(1 for o in self.orders.values() if o.tag == client_order_id)

    def execute(self, client_order_id: str, qty: Decimal, price: Decimal) -> None:
        o = self._find(client_order_id)
        d = o.data
        filled = d["exec_quantity"] + qty
        assert o.open and filled <= d["quantity"], "execution beyond the order"
        o.notional += qty * price
        d.update(exec_quantity=filled, avg_fill_price=_vwap(o.notional, filled),
                 last_fill_price=price, last_fill_quantity=qty,
                 remaining_quantity=d["quantity"] - filled,
                 status="filled" if filled == d["quantity"] else "partially_filled",
                 transaction_date=_iso(_now(), 3))
        held = self.holdings.setdefault(d["symbol"], [ZERO, ZERO, Decimal(next(
            self._position_ids))])
        if d["side"].startswith("buy"):
            held[0] += qty
            held[1] += qty * price
            self.cash -= qty * price
        else:
            held[1] -= held[1] / held[0] * qty if held[0] else ZERO
            held[0] -= qty
            self.cash += qty * price

    def reject_late(self, client_order_id: str, reason: str = "Rejected by risk") -> None:
        o = self._find(client_order_id)
        o.data.update(status="rejected", reason_description=reason,
                      transaction_date=_iso(_now(), 3))

    def _held(self, symbol: str) -> Decimal:
        return self.holdings.get(symbol, [ZERO])[0]

    def _open_sells(self, symbol: str) -> Decimal:
        return sum((o.data["remaining_quantity"] for o in self.orders.values()
                    if o.open and o.data["side"].startswith("sell")
                    and o.data["symbol"] == symbol), ZERO)

    def _buying_power(self) -> Decimal:
        reserved = ZERO
        for o in self.orders.values():
            d = o.data
            if o.open and d["side"].startswith("buy"):
                reserved += d["remaining_quantity"] * d.get("price", self.prices[d["symbol"]])
        return self.cash - reserved


# ==================================================================================== Coinbase


_COINBASE_ORDER_FIELDS = frozenset({
    "client_order_id", "product_id", "side", "order_configuration", "self_trade_prevention_id",
    "leverage", "margin_type", "retail_portfolio_id", "preview_id",
    "attached_order_configuration", "sor_preference"})


@dataclass
class _CoinbaseOrder:
    data: dict[str, Any]
    notional: Decimal = ZERO
    fills: list[dict[str, Any]] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.data["status"] in ("PENDING", "OPEN", "QUEUED")

    @property
    def size(self) -> Decimal:
        config = next(iter(self.data["order_configuration"].values()))
        return Decimal(config["base_size"])

    @property
    def limit(self) -> Decimal | None:
        config = next(iter(self.data["order_configuration"].values()))
        return Decimal(config["limit_price"]) if config.get("limit_price") else None


class FakeCoinbase(FakeVenue):
    """Coinbase Advanced Trade API v3 (plus the v2 public catalogue ccxt loads markets from).

    Authentication is checked as Coinbase documents it: ``Authorization: Bearer <JWT>`` signed
    ES256 with the CDP key, ``kid``/``sub`` = key name, ``iss`` ``coinbase-cloud``,
    ``aud`` ``retail_rest_api_proxy``, ``uri`` = ``"<METHOD> <host><path>"``, not expired;
    otherwise ``401 Unauthorized``. Create Order answers ``{"success": true,
    "success_response": {...}}``, or ``{"success": false, "error_response": {"error":
    "INSUFFICIENT_FUND", …, "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND"}}``, and
    ``400 {"error": "INVALID_ARGUMENT", …}`` for malformed input. A known ``client_order_id``
    returns the existing order instead of creating a second one. Get Order/List Orders/List
    Fills/Batch Cancel/List Accounts/market ticker use the documented shapes and cursors.

    Deviations: unknown request fields are refused with ``400 INVALID_ARGUMENT`` (assumed from
    the API's strict JSON gateway, not a documented promise); market IOC orders fill completely
    at once at the mark price; limit orders wait
    for ``execute``; no fees (``commission`` "0"); only spot products; ``uri`` may carry the
    ``http://`` scheme that ccxt leaves in when the base URL is not https; the exact text of
    ``error_details``/``message`` is paraphrased.
    """

    name = "coinbase"

    def __init__(self, *, key_name: str, public_key: Any, balances: dict[str, Decimal],
                 prices: dict[str, Decimal]) -> None:
        super().__init__()
        self.key_name, self.public_key = key_name, public_key
        # "return_existing" as the Create Order reference describes; "reject" models a venue
        # (or a future API revision) that refuses a reused client_order_id instead
        self.duplicates = "return_existing"
        self.balances = dict(balances)  # currency -> total
        self.prices = dict(prices)  # product id (BTC-USD) -> mark
        self.orders: dict[str, _CoinbaseOrder] = {}
        self.portfolio = str(uuid.uuid4())
        self._trade_seq = itertools.count(1)
        self._account_ids = {c: str(uuid.uuid5(uuid.NAMESPACE_URL, c)) for c in balances}

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v2/currencies", self.currencies)
        app.router.add_get("/v2/currencies/crypto", self.crypto_currencies)
        app.router.add_get("/v2/exchange-rates", self.exchange_rates)
        v3 = "/api/v3/brokerage"
        app.router.add_get(f"{v3}/market/products", self.products)
        app.router.add_get(f"{v3}/market/products/{{product_id}}/ticker", self.ticker)
        app.router.add_get(f"{v3}/transaction_summary", self.transaction_summary)
        app.router.add_post(f"{v3}/orders", self.create_order)
        app.router.add_post(f"{v3}/orders/batch_cancel", self.batch_cancel)
        app.router.add_get(f"{v3}/orders/historical/batch", self.list_orders)
        app.router.add_get(f"{v3}/orders/historical/fills", self.list_fills)
        app.router.add_get(f"{v3}/orders/historical/{{order_id}}", self.get_order)
        app.router.add_get(f"{v3}/accounts", self.accounts)

    def authorized(self, request: web.Request) -> web.Response | None:
        public = request.path.startswith(("/v2/", "/api/v3/brokerage/market/"))
        if public:
            return None
        unauthorized = web.Response(status=401, text="Unauthorized\n",
                                    content_type="text/plain")
        header = request.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return unauthorized
        token = header.removeprefix("Bearer ")
        try:
            if jwt.get_unverified_header(token).get("kid") != self.key_name:
                return unauthorized
            claims = jwt.decode(token, self.public_key, algorithms=["ES256"],
                                audience="retail_rest_api_proxy", issuer="coinbase-cloud",
                                options={"require": ["exp", "nbf", "sub", "uri"]})
        except jwt.PyJWTError:
            return unauthorized
        uri = re.sub(r"^(\w+) https?://", r"\1 ", str(claims.get("uri", "")))
        if claims.get("sub") != self.key_name or uri != (
                f"{request.method} {request.host}{request.path}"):
            return unauthorized
        return None

    # -------------------------------------------------------------- catalogue

    async def currencies(self, request: web.Request) -> web.Response:
        return _json({"data": [{"id": "USD", "name": "US Dollar", "min_size": "0.01"}]})

    async def crypto_currencies(self, request: web.Request) -> web.Response:
        data = [{"asset_id": str(uuid.uuid5(uuid.NAMESPACE_URL, p.split("-")[0])),
                 "code": p.split("-")[0], "name": p.split("-")[0], "color": "#F7931A",
                 "sort_index": 100, "exponent": 8, "type": "crypto",
                 "address_regex": "^.+$"} for p in sorted(self.prices)]
        return _json({"data": data})

    async def exchange_rates(self, request: web.Request) -> web.Response:
        rates = {"USD": "1"}
        rates.update({p.split("-")[0]: _s(1 / price) for p, price in self.prices.items()})
        return _json({"data": {"currency": "USD", "rates": rates}})

    async def products(self, request: web.Request) -> web.Response:
        if request.query.get("product_type", "SPOT") != "SPOT":
            return _json({"products": [], "num_products": 0})
        out = []
        for pid, price in sorted(self.prices.items()):
            base, quote = pid.split("-")
            out.append({
                "product_id": pid, "price": _s(price), "price_percentage_change_24h": "0",
                "volume_24h": "1000", "volume_percentage_change_24h": "0",
                "base_increment": "0.00000001", "quote_increment": "0.01",
                "quote_min_size": "1", "quote_max_size": "150000000",
                "base_min_size": "0.00000001", "base_max_size": "3400", "base_name": base,
                "quote_name": "US Dollar", "watched": False, "is_disabled": False,
                "new": False, "status": "online", "cancel_only": False, "limit_only": False,
                "post_only": False, "trading_disabled": False, "auction_mode": False,
                "product_type": "SPOT", "quote_currency_id": quote, "base_currency_id": base,
                "fcm_trading_session_details": None, "mid_market_price": "", "alias": "",
                "alias_to": [], "base_display_symbol": base, "quote_display_symbol": quote,
                "view_only": False, "price_increment": "0.01", "display_name": pid,
                "product_venue": "CBE",
            })
        return _json({"products": out, "num_products": len(out)})

    async def ticker(self, request: web.Request) -> web.Response:
        pid = request.match_info["product_id"]
        if pid not in self.prices:
            return _json({"error": "NOT_FOUND", "error_details": "product not found",
                          "message": "product not found"}, 404)
        price = self.prices[pid]
        trade = {"trade_id": str(next(self._trade_seq)), "product_id": pid,
                 "price": _s(price), "size": "0.001", "time": _iso(_now()), "side": "BUY",
                 "exchange": "CBE"}
        return _json({"trades": [trade], "best_bid": _s(price), "best_ask": _s(price)})

    async def transaction_summary(self, request: web.Request) -> web.Response:
        return _json({"total_volume": 0, "total_fees": 0, "fee_tier": {
            "pricing_tier": "Advanced 1", "usd_from": "0", "usd_to": "1000",
            "taker_fee_rate": "0.012", "maker_fee_rate": "0.006"},
            "margin_rate": None, "goods_and_services_tax": None,
            "advanced_trade_only_volume": 0, "advanced_trade_only_fees": 0,
            "coinbase_pro_volume": 0, "coinbase_pro_fees": 0})

    # ----------------------------------------------------------------- orders

    async def create_order(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return self._invalid("request body is not JSON")
        if not isinstance(body, dict):
            return self._invalid("request body must be an object")
        unknown = set(body) - _COINBASE_ORDER_FIELDS
        if unknown:  # the gateway in front of the API refuses fields it does not know
            return self._invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
        cid, pid, side = body.get("client_order_id"), body.get("product_id"), body.get("side")
        configs = body.get("order_configuration")
        if not cid or not isinstance(cid, str):
            return self._invalid("client_order_id is required")
        existing = next((o for o in self.orders.values()
                         if o.data["client_order_id"] == cid), None)
        if existing is not None and self.duplicates == "return_existing":
            return _json(self._success(existing))
        if existing is not None:  # the hypothetical alternative: refuse the duplicate
            return _json({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON",
                          "order_id": "", "error_response": {
                              "error": "UNKNOWN_FAILURE_REASON",
                              "message": "client_order_id already used", "error_details": "",
                              "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON"},
                          "order_configuration": configs})
        if pid not in self.prices:
            return self._invalid(f"invalid product_id {pid}")
        if side not in ("BUY", "SELL"):
            return self._invalid("side must be BUY or SELL")
        if not isinstance(configs, dict) or len(configs) != 1:
            return self._invalid("exactly one order_configuration is required")
        kind, config = next(iter(configs.items()))
        allowed = {"market_market_ioc", "market_market_fok", "limit_limit_gtc",
                   "limit_limit_fok", "sor_limit_ioc"}
        if kind not in allowed or not isinstance(config, dict):
            return _json({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON",
                          "order_id": "", "error_response": {
                              "error": "UNSUPPORTED_ORDER_CONFIGURATION",
                              "message": f"{kind} is not supported", "error_details": "",
                              "preview_failure_reason": "UNKNOWN_PREVIEW_FAILURE_REASON"},
                          "order_configuration": configs})
        try:
            size = Decimal(str(config["base_size"]))
            limit = Decimal(str(config["limit_price"])) if "limit_price" in config else None
        except (KeyError, ArithmeticError):
            return self._invalid("base_size (and limit_price for limit orders) required")
        if size <= 0 or (limit is not None and limit <= 0) or ((
                kind.startswith("limit") or kind.startswith("sor")) and limit is None):
            return self._invalid("sizes and prices must be positive")
        base, quote = pid.split("-")
        price = limit or self.prices[pid]
        if (side == "BUY" and size * price > self._available(quote)) or (
                side == "SELL" and size > self._available(base)):
            return _json({"success": False, "failure_reason": "UNKNOWN_FAILURE_REASON",
                          "order_id": "", "error_response": {
                              "error": "INSUFFICIENT_FUND",
                              "message": "Insufficient balance in source account",
                              "error_details": "",
                              "preview_failure_reason": "PREVIEW_INSUFFICIENT_FUND"},
                          "order_configuration": configs})
        tif = {"market_market_ioc": "IMMEDIATE_OR_CANCEL", "sor_limit_ioc":
               "IMMEDIATE_OR_CANCEL", "market_market_fok": "FILL_OR_KILL",
               "limit_limit_fok": "FILL_OR_KILL"}.get(kind, "GOOD_UNTIL_CANCELLED")
        order = _CoinbaseOrder({
            "order_id": str(uuid.uuid4()), "product_id": pid, "user_id": "fake-user",
            "order_configuration": configs, "side": side, "client_order_id": cid,
            "status": "OPEN", "time_in_force": tif, "created_time": _iso(_now()),
            "completion_percentage": "0", "filled_size": "0", "average_filled_price": "0",
            "fee": "", "number_of_fills": "0", "filled_value": "0", "pending_cancel": False,
            "size_in_quote": False, "total_fees": "0", "size_inclusive_of_fees": False,
            "total_value_after_fees": "0", "trigger_status": "INVALID_ORDER_TYPE",
            "order_type": "MARKET" if kind.startswith("market") else "LIMIT",
            "reject_reason": "", "settled": False, "product_type": "SPOT",
            "reject_message": "", "cancel_message": "",
            "order_placement_source": "RETAIL_ADVANCED", "outstanding_hold_amount": "0",
            "is_liquidation": False, "last_fill_time": None, "edit_history": [],
            "leverage": "", "margin_type": "UNKNOWN_MARGIN_TYPE",
            "retail_portfolio_id": self.portfolio,
        })
        self.orders[order.data["order_id"]] = order
        if kind.startswith("market"):
            self._execute(order, size, self.prices[pid])
        if self._take_lost_ack():
            return self.lost_ack()
        return _json(self._success(order))

    @staticmethod
    def _success(o: _CoinbaseOrder) -> dict[str, Any]:
        d = o.data
        return {"success": True, "success_response": {
            "order_id": d["order_id"], "product_id": d["product_id"], "side": d["side"],
            "client_order_id": d["client_order_id"]},
            "order_configuration": d["order_configuration"]}

    @staticmethod
    def _invalid(message: str) -> web.Response:
        return _json({"error": "INVALID_ARGUMENT", "error_details": message,
                      "message": message}, 400)

    async def get_order(self, request: web.Request) -> web.Response:
        o = self.orders.get(request.match_info["order_id"])
        if o is None:
            return _json({"error": "NOT_FOUND", "error_details":
                          "order with this orderID was not found",
                          "message": "order with this orderID was not found"}, 404)
        return _json({"order": o.data})

    async def list_orders(self, request: web.Request) -> web.Response:
        q = request.query
        rows = sorted(self.orders.values(), key=lambda o: o.data["created_time"], reverse=True)
        if q.getall("product_ids", []):
            rows = [o for o in rows if o.data["product_id"] in q.getall("product_ids")]
        if q.getall("order_status", []):
            rows = [o for o in rows if o.data["status"] in q.getall("order_status")]
        limit = int(q.get("limit", "100"))
        start = int(q.get("cursor") or 0)
        page = rows[start:start + limit]
        more = start + limit < len(rows)
        return _json({"orders": [o.data for o in page], "sequence": "0", "has_next": more,
                      "cursor": str(start + limit) if more else ""})

    async def list_fills(self, request: web.Request) -> web.Response:
        q = request.query
        wanted = set(q.getall("order_ids", [])) | set(q.getall("order_id", []))
        rows = [f for o in self.orders.values() for f in o.fills
                if not wanted or f["order_id"] in wanted]
        rows.sort(key=lambda f: f["sequence_timestamp"], reverse=True)
        limit = int(q.get("limit", "100"))
        start = int(q.get("cursor") or 0)
        more = start + limit < len(rows)
        return _json({"fills": rows[start:start + limit],
                      "cursor": str(start + limit) if more else ""})

    async def batch_cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        results = []
        for oid in body.get("order_ids", []):
            o = self.orders.get(oid)
            if o is None:
                results.append({"success": False, "failure_reason": "UNKNOWN_CANCEL_ORDER",
                                "order_id": oid})
            elif not o.open:
                reason = ("ORDER_IS_FULLY_FILLED" if o.data["status"] == "FILLED"
                          else "DUPLICATE_CANCEL_REQUEST")
                results.append({"success": False, "failure_reason": reason, "order_id": oid})
            else:
                o.data["status"] = "CANCELLED"
                results.append({"success": True,
                                "failure_reason": "UNKNOWN_CANCEL_FAILURE_REASON",
                                "order_id": oid})
        return _json({"results": results})

    async def accounts(self, request: web.Request) -> web.Response:
        rows = []
        for cur, total in sorted(self.balances.items()):
            hold = self._hold(cur)
            rows.append({
                "uuid": self._account_ids.setdefault(cur, str(uuid.uuid4())),
                "name": f"{cur} Wallet", "currency": cur,
                "available_balance": {"value": _s(total - hold), "currency": cur},
                "default": cur == "USD", "active": True,
                "created_at": "2024-01-02T15:04:05.000Z",
                "updated_at": "2024-01-02T15:04:05.000Z", "deleted_at": None,
                "type": "ACCOUNT_TYPE_FIAT" if cur == "USD" else "ACCOUNT_TYPE_CRYPTO",
                "ready": True, "hold": {"value": _s(hold), "currency": cur},
                "retail_portfolio_id": self.portfolio,
            })
        limit = int(request.query.get("limit", "49"))
        start = int(request.query.get("cursor") or 0)
        more = start + limit < len(rows)
        return _json({"accounts": rows[start:start + limit], "has_next": more,
                      "cursor": str(start + limit) if more else "", "size": len(rows)})

    # ------------------------------------------------------------ controls

    def _find(self, client_order_id: str) -> _CoinbaseOrder:
        return next(o for o in self.orders.values()
                    if o.data["client_order_id"] == client_order_id)

    def orders_with(self, client_order_id: str) -> int:
        return sum(1 for o in self.orders.values()
                   if o.data["client_order_id"] == client_order_id)

    def execute(self, client_order_id: str, qty: Decimal, price: Decimal) -> None:
        self._execute(self._find(client_order_id), qty, price)

    def _execute(self, o: _CoinbaseOrder, qty: Decimal, price: Decimal) -> None:
        d = o.data
        filled = Decimal(d["filled_size"]) + qty
        assert o.open and filled <= o.size, "execution beyond the order"
        o.notional += qty * price
        now = _now()
        seq = next(self._trade_seq)
        o.fills.append({
            "entry_id": str(uuid.uuid4()), "trade_id": str(uuid.uuid4()),
            "order_id": d["order_id"], "trade_time": _iso(now), "trade_type": "FILL",
            "price": _s(price), "size": _s(qty), "commission": "0",
            "product_id": d["product_id"], "sequence_timestamp": f"{_iso(now)}#{seq:08d}",
            "liquidity_indicator": "TAKER", "size_in_quote": False, "user_id": "fake-user",
            "side": d["side"], "retail_portfolio_id": self.portfolio,
        })
        d.update(filled_size=_s(filled), average_filled_price=_s(_vwap(o.notional, filled)),
                 filled_value=_s(o.notional), number_of_fills=str(len(o.fills)),
                 completion_percentage=_s(filled / o.size * 100),
                 total_value_after_fees=_s(o.notional), last_fill_time=_iso(now),
                 status="FILLED" if filled == o.size else d["status"])
        base, quote = d["product_id"].split("-")
        sign = 1 if d["side"] == "BUY" else -1
        self.balances[base] = self.balances.get(base, ZERO) + sign * qty
        self.balances[quote] = self.balances.get(quote, ZERO) - sign * qty * price

    def reject_late(self, client_order_id: str, reason: str = "rejected by risk") -> None:
        o = self._find(client_order_id)
        o.data.update(status="FAILED", reject_reason="HOLD_FAILURE", reject_message=reason)

    def _hold(self, currency: str) -> Decimal:
        held = ZERO
        for o in self.orders.values():
            if not o.open:
                continue
            base, quote = o.data["product_id"].split("-")
            remaining = o.size - Decimal(o.data["filled_size"])
            if o.data["side"] == "BUY" and quote == currency:
                held += remaining * (o.limit or self.prices[o.data["product_id"]])
            elif o.data["side"] == "SELL" and base == currency:
                held += remaining
        return held

    def _available(self, currency: str) -> Decimal:
        return self.balances.get(currency, ZERO) - self._hold(currency)
