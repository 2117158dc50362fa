"""Binance's and Kraken's spot dialects: how an order carries our client order id, how it is
found again, and how each venue's raw answers (``info``) read. Numbers come from ``info``,
never from ccxt's float fields.

Client order ids: a leg id (``<child uuid>.<index>``, 38 characters) fits neither venue, so
each venue gets an id derived from ours, the same on every retry:

* Binance: ``newClientOrderId`` (at most 36 of ``[.A-Za-z0-9:/_-]``): ``v`` + the first 32 hex
  digits of SHA-256 of our id; orders are found again by ``origClientOrderId``.
* Kraken: ``cl_ord_id`` (a UUID is one of its accepted forms): a UUID built from SHA-256 of our
  id; orders are found again by filtering the open, then the closed, orders on ``cl_ord_id``.
  (Kraken's older ``userref`` is a 32-bit number: too narrow to be unique per leg.)
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from vanta.adapters.brokers import _http
from vanta.application.ports.brokers import BrokerOrder, OrderStatus

BINANCE_STATUS: Final = {
    "NEW": OrderStatus.NEW, "PENDING_NEW": OrderStatus.PENDING,
    "PARTIALLY_FILLED": OrderStatus.PARTIALLY_FILLED, "FILLED": OrderStatus.FILLED,
    "CANCELED": OrderStatus.CANCELED, "PENDING_CANCEL": OrderStatus.NEW,
    "REJECTED": OrderStatus.REJECTED, "EXPIRED": OrderStatus.EXPIRED,
    "EXPIRED_IN_MATCH": OrderStatus.EXPIRED,
}
KRAKEN_STATUS: Final = {
    "pending": OrderStatus.PENDING, "open": OrderStatus.NEW, "closed": OrderStatus.FILLED,
    "canceled": OrderStatus.CANCELED, "expired": OrderStatus.EXPIRED,
}
# Kraken's legacy asset codes (X/Z prefixed) for the assets the fee models list
KRAKEN_ASSETS: Final = {"ZUSD": "USD", "XXBT": "BTC", "XBT": "BTC", "XETH": "ETH",
                        "XXETH": "ETH", "USDC": "USDC", "SOL": "SOL"}


def _ts(value: object) -> datetime | None:
    """Epoch milliseconds (Binance) or seconds with a fraction (Kraken)."""
    d = _http.dec(value)
    if d is None:
        return None
    seconds = d / 1000 if d > 10_000_000_000 else d
    return datetime.fromtimestamp(float(seconds), UTC)


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order as the venue's raw answer tells it."""

    order_id: str
    venue_client_id: str | None
    market_id: str
    side: str
    qty: Decimal | None
    filled: Decimal
    avg_price: Decimal | None
    status: OrderStatus
    reason: str | None
    created: datetime | None


class Binance:
    id: Final = "binance"

    @staticmethod
    def venue_client_id(client_order_id: str) -> str:
        return "v" + hashlib.sha256(client_order_id.encode()).hexdigest()[:32]

    def order_params(self, order: BrokerOrder) -> dict[str, Any]:
        return {"newClientOrderId": self.venue_client_id(order.client_order_id)}

    @staticmethod
    def read_order(info: Mapping[str, Any]) -> VenueOrder:
        filled = _http.dec0(info.get("executedQty"))
        quote = _http.dec0(info.get("cummulativeQuoteQty"))
        status = BINANCE_STATUS.get(str(info.get("status", "")).upper(), OrderStatus.PENDING)
        return VenueOrder(str(info.get("orderId", "")), info.get("clientOrderId"),
                          str(info.get("symbol", "")), str(info.get("side", "")).lower(),
                          _http.dec(info.get("origQty")), filled,
                          quote / filled if filled > 0 and quote > 0 else None, status,
                          f"binance: {status.value}" if status is OrderStatus.REJECTED
                          else None, _ts(info.get("transactTime") or info.get("time")))

    @staticmethod
    def read_trade(info: Mapping[str, Any]) -> tuple[str, str, Decimal | None, Decimal | None,
                                                     datetime | None]:
        """(trade id, order id, qty, price, time)."""
        return (str(info.get("id", "")), str(info.get("orderId", "")),
                _http.dec(info.get("qty")), _http.dec(info.get("price")), _ts(info.get("time")))

    @staticmethod
    def read_balances(info: Mapping[str, Any]) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for b in info.get("balances") or []:
            cur = str(b.get("asset", "")).upper()
            out[cur] = out.get(cur, Decimal(0)) + _http.dec0(b.get("free")) + \
                _http.dec0(b.get("locked"))
        return out

    @staticmethod
    def last_price(info: Mapping[str, Any]) -> Decimal | None:
        return _http.dec(info.get("lastPrice"))


class Kraken:
    id: Final = "kraken"

    @staticmethod
    def venue_client_id(client_order_id: str) -> str:
        return str(uuid.UUID(bytes=hashlib.sha256(client_order_id.encode()).digest()[:16]))

    def order_params(self, order: BrokerOrder) -> dict[str, Any]:
        return {"cl_ord_id": self.venue_client_id(order.client_order_id)}

    @staticmethod
    def read_order(info: Mapping[str, Any]) -> VenueOrder:
        descr = info.get("descr") or {}
        filled = _http.dec0(info.get("vol_exec"))
        status = KRAKEN_STATUS.get(str(info.get("status", "")).lower(), OrderStatus.PENDING)
        if status is OrderStatus.NEW and filled > 0:
            status = OrderStatus.PARTIALLY_FILLED
        if status is OrderStatus.FILLED and filled < _http.dec0(info.get("vol")):
            status = OrderStatus.CANCELED  # closed short: the rest will never fill
        reason = info.get("reason")
        return VenueOrder(str(info.get("txid") or info.get("id") or ""), info.get("cl_ord_id"),
                          str(descr.get("pair", "")), str(descr.get("type", "")).lower(),
                          _http.dec(info.get("vol")), filled,
                          _http.dec(info.get("price")) if filled > 0 else None, status,
                          f"kraken: {reason}" if reason else None, _ts(info.get("opentm")))

    @staticmethod
    def read_trade(info: Mapping[str, Any]) -> tuple[str, str, Decimal | None, Decimal | None,
                                                     datetime | None]:
        return (str(info.get("trade_id") or info.get("postxid") or ""),
                str(info.get("ordertxid", "")), _http.dec(info.get("vol")),
                _http.dec(info.get("price")), _ts(info.get("time")))

    @staticmethod
    def read_balances(info: Mapping[str, Any]) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for code, amount in (info.get("result") or {}).items():
            raw = str(code).upper()
            cur = KRAKEN_ASSETS.get(raw, raw[1:] if len(raw) == 4 and raw[0] in "XZ" else raw)
            out[cur] = out.get(cur, Decimal(0)) + _http.dec0(amount)
        return out

    @staticmethod
    def last_price(info: Mapping[str, Any]) -> Decimal | None:
        last = info.get("c") or []
        return _http.dec(last[0]) if last else None


Dialect = Binance | Kraken
DIALECTS: Final[Mapping[str, Dialect]] = {"binance": Binance(), "kraken": Kraken()}
