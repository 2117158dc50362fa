"""Tradier Brokerage API over httpx.

Only translation: form-encoded ``POST /v1/accounts/{account}/orders`` (``class=equity``, our
child order id as ``tag``), ``GET /v1/accounts/{account}/orders[/{id}]?includeTags=true``,
``DELETE /v1/accounts/{account}/orders/{id}``, ``GET …/positions`` and ``GET …/balances``.
Authentication is ``Authorization: Bearer <token>``; ``Accept: application/json`` is always
sent because Tradier answers XML by default.

Tradier's own rules that shape this adapter:

* **No server-side idempotency.** A ``tag`` is a free label; Tradier accepts two orders with the
  same tag. The adapter therefore looks the tag up (today's orders, every page) before it
  places an order, and remembers tag -> order id for later calls. The look-up and the placement
  are two requests, so two processes submitting the same child at the same instant could both
  place it; the platform's outbox lease keeps one worker per child.
* **Tags** may only hold letters, digits, ``-`` and ``.`` (255 at most): our UUID ids qualify.
* **Durations** are ``day``/``gtc`` (``pre``/``post`` sessions are not used); ``ioc``/``fok`` are
  refused locally as :class:`BrokerRejected`. Equity quantities are whole shares.
* **No per-execution ids.** An order carries ``exec_quantity``, ``avg_fill_price``,
  ``last_fill_quantity`` and ``last_fill_price`` only. The adapter derives one fill per observed
  increase of ``exec_quantity``, named ``{order id}:{cumulative quantity}`` (unique because the
  cumulative quantity only grows), priced so the fills' VWAP equals ``avg_fill_price``. Fills
  that happen between two reports are merged into one, and the record lives in this adapter
  instance: a new instance starts from zero and reports the whole executed quantity as one fill.
  ``filled_qty``/``avg_price`` of the report are Tradier's own figures and always exact.
* Downstream refusals (risk checks, market centres) arrive after a ``200``: the order's status
  becomes ``rejected``/``error``, reported as :attr:`OrderStatus.REJECTED`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from typing import Any

import httpx

from vanta.adapters.brokers import _http
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.brokers import (
    TERMINAL_ORDER_STATUSES,
    BrokerAck,
    BrokerError,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    Fill,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.domain.orders import TimeInForce

SANDBOX_URL = "https://sandbox.tradier.com"
LIVE_URL = "https://api.tradier.com"
VENUE = "tradier"
_TAG = re.compile(r"^[A-Za-z0-9.\-]{1,255}$")
_PRICE_QUANTUM = Decimal("1e-10")

_STATUS: dict[str, OrderStatus] = {
    "pending": OrderStatus.PENDING,
    "submitted": OrderStatus.PENDING,
    "open": OrderStatus.NEW,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
    "error": OrderStatus.REJECTED,
}
_DURATION = {TimeInForce.DAY: "day", TimeInForce.GTC: "gtc"}


@dataclass(slots=True)
class _Seen:
    """What this instance has already reported for one order."""

    qty: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    fills: list[Fill] = field(default_factory=list)


class TradierBroker:
    """:class:`~vanta.application.ports.brokers.BrokerGateway` for one Tradier account."""

    def __init__(self, access_token: str, account_id: str, *, base_url: str = SANDBOX_URL,
                 timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None,
                 page_size: int = 100, max_pages: int = 50, clock: Clock = utcnow) -> None:
        self.base_url = base_url.rstrip("/")
        self.account_id = account_id
        self._page_size = page_size
        self._max_pages = max_pages
        self._clock = clock
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            follow_redirects=False,
            headers={"Authorization": f"Bearer {access_token}",
                     "Accept": "application/json"})
        self._order_ids: dict[str, str] = {}
        self._seen: dict[str, _Seen] = {}

    def __repr__(self) -> str:
        return f"TradierBroker(base_url={self.base_url!r}, account_id={self.account_id!r})"

    @property
    def _orders_path(self) -> str:
        return f"/v1/accounts/{self.account_id}/orders"

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        if not _TAG.match(order.client_order_id):
            raise BrokerRejected("tradier: a tag may hold only letters, digits, '-' and '.'",
                                 code="invalid_tag")
        duration = _DURATION.get(order.tif)
        if duration is None:
            raise BrokerRejected(f"tradier: time in force {order.tif.value} is not supported "
                                 "for equity orders", code="unsupported_tif")
        if order.qty != order.qty.to_integral_value():
            raise BrokerRejected("tradier: equity quantities are whole shares",
                                 code="fractional_qty")
        existing = await self._find(order.client_order_id)
        if existing is not None:
            _http.check_same(order, symbol=existing.get("symbol"),
                             side=_http.side_of(existing.get("side")),
                             qty=_http.dec(existing.get("quantity")), venue=VENUE)
            return self._ack(order.client_order_id, existing)
        form = {
            "class": "equity",
            "symbol": order.symbol,
            "side": order.side.value,
            "quantity": _http.plain(order.qty),
            "type": order.order_type,
            "duration": duration,
            "tag": order.client_order_id,
        }
        if order.limit_price is not None:
            form["price"] = _http.plain(order.limit_price)
        r = await self._send("POST", self._orders_path, data=form)
        data = _http.json_body(r)
        errors = _errors(data)
        if r.status_code == 200 and not errors and isinstance(data, dict):
            placed = data.get("order") or {}
            if placed.get("id") is None:
                raise BrokerUnavailable("tradier: order answer without an id", code="malformed")
            order_id = str(placed["id"])
            self._order_ids[order.client_order_id] = order_id
            return BrokerAck(client_order_id=order.client_order_id, broker_order_id=order_id,
                             status=OrderStatus.PENDING, submitted_at=self._clock())
        if 400 <= r.status_code < 500 or errors:
            raise BrokerRejected(f"tradier: {'; '.join(errors) or _http.excerpt(r)}",
                                 code=errors[-1] if errors else None, status=r.status_code)
        raise BrokerUnavailable(f"tradier: unexpected answer {r.status_code} to order placement",
                                status=r.status_code)

    async def cancel(self, client_order_id: str) -> None:
        existing = await self._require(client_order_id)
        if _status(existing) in TERMINAL_ORDER_STATUSES:
            return
        r = await self._send("DELETE", f"{self._orders_path}/{existing['id']}")
        data = _http.json_body(r)
        if r.status_code == 200 and not _errors(data):
            return
        again = await self._require(client_order_id)
        if _status(again) in TERMINAL_ORDER_STATUSES:
            return
        raise BrokerRejected(f"tradier: cancel refused: {'; '.join(_errors(data))}",
                             status=r.status_code)

    async def order_report(self, client_order_id: str) -> OrderReport:
        data = await self._require(client_order_id)
        order_id = str(data["id"])
        filled = _http.dec0(data.get("exec_quantity"))
        avg = _http.dec(data.get("avg_fill_price")) if filled > 0 else None
        return OrderReport(
            client_order_id=client_order_id,
            broker_order_id=order_id,
            symbol=str(data.get("symbol")),
            side=_http.side_of(data.get("side")) or _bad(data, "side"),
            status=_status(data),
            qty=_http.dec(data.get("quantity")) or filled,
            filled_qty=filled,
            avg_price=avg,
            fills=tuple(self._observe(order_id, data, filled, avg)),
            reason=_reason(data),
        )

    async def positions(self) -> dict[str, Decimal]:
        r = await self._send("GET", f"/v1/accounts/{self.account_id}/positions")
        data = self._expect(r, "positions")
        held: dict[str, Decimal] = {}
        for p in _items(data.get("positions"), "position"):
            qty = _http.dec0(p.get("quantity"))
            if qty != 0:
                held[str(p["symbol"])] = held.get(str(p["symbol"]), Decimal(0)) + qty
        return dict(sorted(held.items()))

    async def account_nav(self) -> Decimal:
        r = await self._send("GET", f"/v1/accounts/{self.account_id}/balances")
        balances = self._expect(r, "balances").get("balances")
        equity = _http.dec(balances.get("total_equity")) if isinstance(balances, dict) else None
        if equity is None:
            raise BrokerError("tradier: balances carry no total_equity")
        return equity

    async def balances(self) -> dict[str, Decimal]:
        r = await self._send("GET", f"/v1/accounts/{self.account_id}/balances")
        balances = self._expect(r, "balances").get("balances")
        cash = _http.dec(balances.get("total_cash")) if isinstance(balances, dict) else None
        if cash is None:
            raise BrokerError("tradier: balances carry no total_cash")
        return {"USD": cash}

    async def close(self) -> None:
        await self._client.aclose()

    # --------------------------------------------------------------- internals

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await _http.request(self._client, VENUE, method, path, **kwargs)

    async def _require(self, client_order_id: str) -> dict[str, Any]:
        found = await self._find(client_order_id)
        if found is None:
            raise OrderNotFound(f"tradier: no order tagged {client_order_id}")
        return found

    async def _find(self, tag: str) -> dict[str, Any] | None:
        """The order tagged ``tag``: by remembered id, else by paging through the orders."""
        known = self._order_ids.get(tag)
        if known is not None:
            r = await self._send("GET", f"{self._orders_path}/{known}",
                                 params={"includeTags": "true"})
            if r.status_code == 200:
                data = _http.json_body(r)
                if isinstance(data, dict) and isinstance(data.get("order"), dict):
                    return data["order"]
            elif r.status_code not in (400, 404):
                self._expect(r, "order")
        for page in range(1, self._max_pages + 1):
            r = await self._send("GET", self._orders_path, params={
                "includeTags": "true", "page": str(page), "limit": str(self._page_size)})
            orders = _items(self._expect(r, "orders").get("orders"), "order")
            for o in orders:
                if o.get("tag") == tag:
                    self._order_ids[tag] = str(o["id"])
                    return o
            if len(orders) < self._page_size:
                return None
        raise BrokerUnavailable(f"tradier: more than {self._max_pages} pages of orders; "
                                "cannot rule out a duplicate", code="too_many_orders")

    def _ack(self, tag: str, data: dict[str, Any]) -> BrokerAck:
        return BrokerAck(client_order_id=tag, broker_order_id=str(data["id"]),
                         status=_status(data),
                         submitted_at=_http.parse_ts(data.get("create_date")))

    def _observe(self, order_id: str, data: dict[str, Any], filled: Decimal,
                 avg: Decimal | None) -> list[Fill]:
        seen = self._seen.setdefault(order_id, _Seen())
        if filled > seen.qty and avg is not None:
            delta = filled - seen.qty
            last_qty = _http.dec(data.get("last_fill_quantity"))
            last_price = _http.dec(data.get("last_fill_price"))
            if last_qty == delta and last_price:
                price = last_price
            else:
                price = ((avg * filled - seen.notional) / delta).quantize(_PRICE_QUANTUM)
                price = price.normalize()
            ts = _http.parse_ts(data.get("transaction_date")) or self._clock()
            if ts.tzinfo is None:
                ts = ts.replace(tzinfo=UTC)
            seen.fills.append(Fill(trade_id=f"{order_id}:{_http.plain(filled)}", qty=delta,
                                   price=price, ts=ts))
            seen.qty = filled
            seen.notional += delta * price
        return list(seen.fills)

    @staticmethod
    def _expect(r: httpx.Response, key: str) -> dict[str, Any]:
        data = _http.json_body(r)
        if r.status_code == 200 and isinstance(data, dict) and key in data:
            return data
        raise BrokerError(f"tradier: expected '{key}', got {r.status_code}: "
                          f"{'; '.join(_errors(data)) or _http.excerpt(r)}",
                          status=r.status_code)


def _items(container: Any, key: str) -> list[dict[str, Any]]:
    """Tradier's XML-shaped JSON: ``"null"`` for none, an object for one, a list for many."""
    if not isinstance(container, dict):
        return []
    inner = container.get(key)
    if isinstance(inner, dict):
        return [inner]
    if isinstance(inner, list):
        return [i for i in inner if isinstance(i, dict)]
    return []


def _errors(data: Any) -> list[str]:
    if not isinstance(data, dict) or not isinstance(data.get("errors"), dict):
        return []
    raw = data["errors"].get("error")
    if isinstance(raw, list):
        return [str(e) for e in raw]
    return [str(raw)] if raw else []


def _status(data: dict[str, Any]) -> OrderStatus:
    status = _STATUS.get(str(data.get("status", "")).lower(), OrderStatus.NEW)
    if status in (OrderStatus.NEW, OrderStatus.PENDING) and _http.dec0(
            data.get("exec_quantity")) > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def _reason(data: dict[str, Any]) -> str | None:
    raw = str(data.get("status", "")).lower()
    if raw in ("rejected", "error", "canceled", "expired"):
        detail = data.get("reason_description") or ""
        return f"tradier: {raw}{': ' + str(detail) if detail else ''}"
    return None


def _bad(data: dict[str, Any], name: str) -> Any:
    raise BrokerError(f"tradier: order {data.get('id')} has no valid {name}")
