"""Coinbase Advanced Trade's dialect: the request body of an order, and reading its answers.

Numbers are read from the venue's raw answer (``info``), never from ccxt's float fields.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from vanta.adapters.brokers import _http
from vanta.application.ports.brokers import BrokerOrder, OrderStatus
from vanta.domain.orders import Side, TimeInForce

STATUS: dict[str, OrderStatus] = {
    "PENDING": OrderStatus.PENDING,
    "QUEUED": OrderStatus.PENDING,
    "UNKNOWN_ORDER_STATUS": OrderStatus.PENDING,
    "OPEN": OrderStatus.NEW,
    "CANCEL_QUEUED": OrderStatus.NEW,
    "EDIT_QUEUED": OrderStatus.NEW,
    "FILLED": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
    "FAILED": OrderStatus.REJECTED,
}


def order_params(order: BrokerOrder) -> dict[str, Any]:
    """Coinbase's own request fields; ccxt merges them over the body it built."""
    size = _http.plain(order.qty)
    if order.limit_price is None:
        key = "market_market_fok" if order.tif is TimeInForce.FOK else "market_market_ioc"
        config: dict[str, Any] = {key: {"base_size": size}}
    else:
        limit = _http.plain(order.limit_price)
        if order.tif is TimeInForce.IOC:
            config = {"sor_limit_ioc": {"base_size": size, "limit_price": limit}}
        elif order.tif is TimeInForce.FOK:
            config = {"limit_limit_fok": {"base_size": size, "limit_price": limit}}
        else:
            config = {"limit_limit_gtc": {"base_size": size, "limit_price": limit,
                                          "post_only": False}}
    params: dict[str, Any] = {"client_order_id": order.client_order_id,
                              "order_configuration": config}
    if order.limit_price is None and order.side is Side.BUY:
        # ccxt option (not sent): without it ccxt insists on a price to compute a quote
        # size; the explicit base_size configuration above replaces ccxt's anyway.
        params["createMarketBuyOrderRequiresPrice"] = False
    return params


def order_qty(info: dict[str, Any]) -> Decimal | None:
    """The ordered base size, from whichever order configuration the order has."""
    for config in (info.get("order_configuration") or {}).values():
        if isinstance(config, dict) and config.get("base_size") is not None:
            return _http.dec(config["base_size"])
    return None


def status(info: dict[str, Any]) -> OrderStatus:
    """Our status for a Coinbase order (an open order with fills is partially filled)."""
    mapped = STATUS.get(str(info.get("status", "")).upper(), OrderStatus.PENDING)
    filled = _http.dec0(info.get("filled_size"))
    if mapped in (OrderStatus.NEW, OrderStatus.PENDING) and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return mapped


def reason(info: dict[str, Any]) -> str | None:
    """Why the venue rejected or cancelled the order, when it says."""
    for key in ("reject_message", "reject_reason", "cancel_message"):
        value = info.get(key)
        if value and value not in ("UNKNOWN_REJECT_REASON", "REJECT_REASON_UNSPECIFIED"):
            return f"coinbase: {value}"
    return None
