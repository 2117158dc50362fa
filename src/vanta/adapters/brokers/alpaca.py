"""Alpaca Trading API v2 over httpx.

Only translation: ``POST /v2/orders`` (our child order id as ``client_order_id``),
``GET /v2/orders:by_client_order_id``, ``DELETE /v2/orders/{id}``, ``GET /v2/positions``,
``GET /v2/account`` and fills from ``GET /v2/account/activities/FILL?order_id=…``.
Authentication is the ``APCA-API-KEY-ID`` / ``APCA-API-SECRET-KEY`` header pair, held only in
the HTTP client's default headers.

Idempotency: Alpaca itself refuses a second order with a known ``client_order_id``
(``422 {"code": 40010001, "message": "client_order_id must be unique"}``); the adapter then
reads that order back and returns its ack.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

from vanta.adapters.brokers import _http
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

PAPER_URL = "https://paper-api.alpaca.markets"
LIVE_URL = "https://api.alpaca.markets"
VENUE = "alpaca"
_ACTIVITY_PAGE = 100
_MAX_ACTIVITY_PAGES = 100

# Alpaca order statuses -> ours. Working statuses become partially_filled once anything filled.
_STATUS: dict[str, OrderStatus] = {
    "new": OrderStatus.NEW,
    "accepted": OrderStatus.PENDING,
    "pending_new": OrderStatus.PENDING,
    "accepted_for_bidding": OrderStatus.PENDING,
    "partially_filled": OrderStatus.PARTIALLY_FILLED,
    "filled": OrderStatus.FILLED,
    "done_for_day": OrderStatus.NEW,
    "pending_cancel": OrderStatus.NEW,
    "pending_replace": OrderStatus.NEW,
    "stopped": OrderStatus.NEW,
    "suspended": OrderStatus.NEW,
    "calculated": OrderStatus.NEW,
    "canceled": OrderStatus.CANCELED,
    "replaced": OrderStatus.CANCELED,
    "expired": OrderStatus.EXPIRED,
    "rejected": OrderStatus.REJECTED,
}


class AlpacaBroker:
    """:class:`~vanta.application.ports.brokers.BrokerGateway` for one Alpaca account."""

    def __init__(self, key_id: str, secret_key: str, *, base_url: str = PAPER_URL,
                 timeout: float = 10.0, transport: httpx.AsyncBaseTransport | None = None
                 ) -> None:
        self.base_url = base_url.rstrip("/")
        self._client = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, transport=transport,
            follow_redirects=False,
            headers={"APCA-API-KEY-ID": key_id, "APCA-API-SECRET-KEY": secret_key,
                     "Accept": "application/json"})

    def __repr__(self) -> str:
        return f"AlpacaBroker(base_url={self.base_url!r})"

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        body: dict[str, Any] = {
            "symbol": order.symbol,
            "qty": _http.plain(order.qty),
            "side": order.side.value,
            "type": order.order_type,
            "time_in_force": order.tif.value,
            "client_order_id": order.client_order_id,
        }
        if order.limit_price is not None:
            body["limit_price"] = _http.plain(order.limit_price)
        r = await self._send("POST", "/v2/orders", json=body)
        data = _http.json_body(r)
        if r.status_code == 200 and isinstance(data, dict):
            return _ack(data)
        message = _message(data) or _http.excerpt(r)
        if r.status_code == 422:
            # "client_order_id must be unique" (the wording has varied): whatever the text,
            # a 422 for an id Alpaca already holds means the order exists
            try:
                existing = await self._order_by_client_id(order.client_order_id)
            except OrderNotFound:
                existing = None
            if existing is not None:
                _http.check_same(order, symbol=existing.get("symbol"),
                                 side=_http.side_of(existing.get("side")),
                                 qty=_http.dec(existing.get("qty")), venue=VENUE)
                return _ack(existing)
        if 400 <= r.status_code < 500:
            raise BrokerRejected(f"alpaca: {message}", code=_code(data), status=r.status_code)
        raise BrokerUnavailable(f"alpaca: unexpected answer {r.status_code} to POST /v2/orders",
                                status=r.status_code)

    async def cancel(self, client_order_id: str) -> None:
        existing = await self._order_by_client_id(client_order_id)
        if _status(existing) in TERMINAL_ORDER_STATUSES:
            return
        r = await self._send("DELETE", f"/v2/orders/{existing['id']}")
        if r.status_code in (200, 204):
            return
        if r.status_code == 404:
            raise OrderNotFound(f"alpaca: no order {client_order_id}", status=404)
        if r.status_code == 422:  # "no longer cancelable": finished in between?
            again = await self._order_by_client_id(client_order_id)
            if _status(again) in TERMINAL_ORDER_STATUSES:
                return
        raise BrokerRejected(f"alpaca: cancel refused: {_message(_http.json_body(r))}",
                             code=_code(_http.json_body(r)), status=r.status_code)

    async def order_report(self, client_order_id: str) -> OrderReport:
        data = await self._order_by_client_id(client_order_id)
        fills = await self._fills(str(data["id"]))
        qty = _http.dec(data.get("qty")) or _http.dec0(data.get("filled_qty"))
        filled = _http.dec0(data.get("filled_qty"))
        return OrderReport(
            client_order_id=str(data.get("client_order_id") or client_order_id),
            broker_order_id=str(data["id"]),
            symbol=str(data.get("symbol")),
            side=_http.side_of(data.get("side")) or _raise_bad(data, "side"),
            status=_status(data),
            qty=qty,
            filled_qty=filled,
            avg_price=_http.dec(data.get("filled_avg_price")) if filled > 0 else None,
            fills=tuple(fills),
            reason=_reason(data),
        )

    async def positions(self) -> dict[str, Decimal]:
        r = await self._send("GET", "/v2/positions")
        data = self._expect(r, list, "GET /v2/positions")
        held: dict[str, Decimal] = {}
        for p in data:
            qty = _http.dec0(p.get("qty"))
            if str(p.get("side", "")).lower() == "short" and qty > 0:
                qty = -qty
            if qty != 0:
                held[str(p["symbol"])] = qty
        return dict(sorted(held.items()))

    async def account_nav(self) -> Decimal:
        r = await self._send("GET", "/v2/account")
        data = self._expect(r, dict, "GET /v2/account")
        equity = _http.dec(data.get("equity"))
        if equity is None:
            raise BrokerError("alpaca: account has no equity figure")
        return equity

    async def balances(self) -> dict[str, Decimal]:
        r = await self._send("GET", "/v2/account")
        data = self._expect(r, dict, "GET /v2/account")
        cash = _http.dec(data.get("cash"))
        if cash is None:
            raise BrokerError("alpaca: account has no cash figure")
        return {str(data.get("currency") or "USD").upper(): cash}

    async def close(self) -> None:
        await self._client.aclose()

    # --------------------------------------------------------------- internals

    async def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await _http.request(self._client, VENUE, method, path, **kwargs)

    async def _order_by_client_id(self, client_order_id: str) -> dict[str, Any]:
        r = await self._send("GET", "/v2/orders:by_client_order_id",
                             params={"client_order_id": client_order_id})
        if r.status_code == 404:
            raise OrderNotFound(f"alpaca: no order with client order id {client_order_id}",
                                status=404)
        return self._expect(r, dict, "GET /v2/orders:by_client_order_id")

    async def _fills(self, order_id: str) -> list[Fill]:
        fills: dict[str, Fill] = {}
        token: str | None = None
        for _ in range(_MAX_ACTIVITY_PAGES):
            params = {"order_id": order_id, "direction": "asc",
                      "page_size": str(_ACTIVITY_PAGE)}
            if token:
                params["page_token"] = token
            r = await self._send("GET", "/v2/account/activities/FILL", params=params)
            page = self._expect(r, list, "GET /v2/account/activities/FILL")
            for a in page:
                if str(a.get("order_id")) != order_id or a.get("activity_type", "FILL") != "FILL":
                    continue
                qty, price, ts = _http.dec(a.get("qty")), _http.dec(a.get("price")), \
                    _http.parse_ts(a.get("transaction_time"))
                if qty is None or price is None or ts is None:
                    raise BrokerError(f"alpaca: malformed fill activity {a.get('id')}")
                fills[str(a["id"])] = Fill(trade_id=str(a["id"]), qty=qty, price=price, ts=ts)
            if len(page) < _ACTIVITY_PAGE:
                break
            token = str(page[-1]["id"])
        return sorted(fills.values(), key=lambda f: (f.ts, f.trade_id))

    @staticmethod
    def _expect(r: httpx.Response, kind: type, what: str) -> Any:
        data = _http.json_body(r)
        if r.status_code == 200 and isinstance(data, kind):
            return data
        raise BrokerError(f"alpaca: {what} answered {r.status_code}: "
                          f"{_message(data) or _http.excerpt(r)}", code=_code(data),
                          status=r.status_code)


def _status(data: dict[str, Any]) -> OrderStatus:
    raw = str(data.get("status", "")).lower()
    status = _STATUS.get(raw, OrderStatus.NEW)
    filled = _http.dec0(data.get("filled_qty"))
    if status in (OrderStatus.NEW, OrderStatus.PENDING) and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def _ack(data: dict[str, Any]) -> BrokerAck:
    return BrokerAck(client_order_id=str(data.get("client_order_id")),
                     broker_order_id=str(data["id"]), status=_status(data),
                     submitted_at=_http.parse_ts(data.get("submitted_at")
                                                 or data.get("created_at")))


def _reason(data: dict[str, Any]) -> str | None:
    raw = str(data.get("status", "")).lower()
    if raw in ("rejected", "canceled", "expired", "replaced"):
        return f"alpaca: {raw}"
    return None


def _message(data: Any) -> str:
    if isinstance(data, dict):
        return str(data.get("message") or "")
    return ""


def _code(data: Any) -> str | None:
    if isinstance(data, dict) and data.get("code") is not None:
        return str(data["code"])
    return None


def _raise_bad(data: dict[str, Any], name: str) -> Any:
    raise BrokerError(f"alpaca: order {data.get('id')} has no valid {name}")
