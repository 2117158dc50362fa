"""Binance and Kraken spot through ccxt: the gateway for conversion and trade legs.

Only translation, as for Coinbase (:mod:`.broker`), over the venue dialects of
:mod:`.dialects`:

* every order carries a venue client id derived from ours (the same on every retry), and a
  submit first looks that id up, so a retried submit acknowledges the order already placed
  instead of placing a second one;
* Binance finds an order only within its symbol: the adapter remembers each order's symbol
  and otherwise tries the pairs the account trades (``symbols``);
* a leg's pair ``BASE-QUOTE`` is ccxt's unified ``BASE/QUOTE`` (ccxt maps Kraken's ``XBT`` to
  ``BTC``); a conversion leg is the spot order ``USDC/USD``;
* errors are mapped as for Coinbase (:mod:`.errors`).
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from vanta.adapters.brokers import _http
from vanta.adapters.brokers.ccxt_venue.dialects import DIALECTS, Dialect, VenueOrder
from vanta.adapters.brokers.ccxt_venue.errors import LOGGER, install_status_policy, map_error
from vanta.application.clock import Clock, utcnow
from vanta.application.ports.brokers import (
    BrokerAck,
    BrokerOrder,
    BrokerRejected,
    Fill,
    OrderNotFound,
    OrderReport,
)

SPOT_EXCHANGES = frozenset(DIALECTS)


def unified(symbol: str) -> str:
    s = symbol.upper()
    return s if "/" in s else s.replace("-", "/", 1)


class CcxtSpotBroker:
    """:class:`~vanta.application.ports.brokers.BrokerGateway` over a ccxt spot exchange."""

    def __init__(self, exchange: Any, *, symbols: Iterable[str] = (),
                 quote_currency: str = "USD", clock: Clock = utcnow) -> None:
        if exchange.id not in DIALECTS:
            raise ValueError(f"ccxt exchange {exchange.id!r} has no spot dialect here; "
                             f"supported: {sorted(DIALECTS)}")
        self._ex = exchange
        self._d: Dialect = DIALECTS[exchange.id]
        self._symbols = tuple(unified(s) for s in symbols)
        self._quote = quote_currency.upper()
        self._clock = clock
        self._symbol_of: dict[str, str] = {}
        exchange.logger = LOGGER
        if hasattr(exchange, "handle_errors"):
            install_status_policy(exchange)

    def __repr__(self) -> str:
        return f"CcxtSpotBroker(exchange={self._ex.id!r})"

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        symbol = unified(order.symbol)
        self._symbol_of[order.client_order_id] = symbol
        placed = await self._find(order.client_order_id, (symbol,))
        if placed is None:
            price = None if order.limit_price is None else _http.plain(order.limit_price)
            try:
                await self._markets()
                created = await self._ex.create_order(
                    symbol, order.order_type, order.side.value, _http.plain(order.qty), price,
                    self._d.order_params(order))
            except Exception as e:
                raise map_error(e, submitting=True) from e
            placed = self._read(created)
        if placed.venue_client_id not in (None, self._d.venue_client_id(
                order.client_order_id)) or placed.qty not in (None, order.qty) or \
                placed.side not in ("", order.side.value):
            raise BrokerRejected(f"{self._ex.id}: client order id {order.client_order_id} "
                                 "already names a different order",
                                 code="client_order_id_conflict")
        return BrokerAck(order.client_order_id, placed.order_id, placed.status,
                         placed.created or self._clock())

    async def cancel(self, client_order_id: str) -> None:
        placed = await self._require(client_order_id)
        if placed.status.value in ("filled", "canceled", "expired", "rejected"):
            return
        try:
            await self._ex.cancel_order(placed.order_id, self._symbol_of.get(client_order_id))
        except Exception as e:
            raise map_error(e, submitting=True) from e

    async def order_report(self, client_order_id: str) -> OrderReport:
        placed = await self._require(client_order_id)
        symbol = self._symbol_of.get(client_order_id, placed.market_id)
        fills = await self._fills(placed.order_id, symbol)
        side = _http.side_of(placed.side)
        if side is None:
            raise BrokerRejected(f"{self._ex.id}: order {placed.order_id} has no side")
        return OrderReport(client_order_id=client_order_id, broker_order_id=placed.order_id,
                           symbol=symbol, side=side, status=placed.status,
                           qty=placed.qty or placed.filled, filled_qty=placed.filled,
                           avg_price=placed.avg_price, fills=tuple(fills),
                           reason=placed.reason)

    async def positions(self) -> dict[str, Decimal]:
        return {f"{cur}/{self._quote}": amount for cur, amount in
                sorted((await self._balances()).items()) if cur != self._quote and amount}

    async def account_nav(self) -> Decimal:
        balances = await self._balances()
        nav = balances.get(self._quote, Decimal(0))
        for cur, amount in sorted(balances.items()):
            if cur != self._quote and amount:
                nav += amount * await self._mark(f"{cur}/{self._quote}")
        return nav

    async def balances(self) -> dict[str, Decimal]:
        got = await self._balances()
        return {c: got.get(c, Decimal(0)) for c in (self._quote, "USDC")}

    async def close(self) -> None:
        await self._ex.close()

    # --------------------------------------------------------------- internals

    async def _markets(self) -> None:
        if not self._ex.markets:
            await self._ex.load_markets()

    def _read(self, answer: dict[str, Any]) -> VenueOrder:
        placed = self._d.read_order(answer.get("info") or {})
        order_id = str(answer.get("id") or placed.order_id)
        return VenueOrder(order_id, placed.venue_client_id, placed.market_id, placed.side,
                          placed.qty, placed.filled, placed.avg_price, placed.status,
                          placed.reason, placed.created)

    async def _require(self, client_order_id: str) -> VenueOrder:
        known = self._symbol_of.get(client_order_id)
        placed = await self._find(client_order_id, (known,) if known else self._symbols)
        if placed is None:
            raise OrderNotFound(f"{self._ex.id}: no order with client order id "
                                f"{client_order_id}")
        return placed

    async def _find(self, client_order_id: str, symbols: Iterable[str]) -> VenueOrder | None:
        cid = self._d.venue_client_id(client_order_id)
        try:
            await self._markets()
            if self._ex.id == "binance":
                for symbol in symbols:
                    try:
                        got = await self._ex.fetch_order(None, symbol,
                                                         {"origClientOrderId": cid})
                    except Exception as e:
                        if isinstance(map_error(e, submitting=False), OrderNotFound):
                            continue
                        raise
                    self._symbol_of[client_order_id] = symbol
                    return self._read(got)
                return None
            for fetch in (self._ex.fetch_open_orders, self._ex.fetch_closed_orders):
                for o in await fetch(None, None, None, {"cl_ord_id": cid}):
                    if (o.get("info") or {}).get("cl_ord_id") == cid:
                        return self._read(o)
        except Exception as e:
            raise map_error(e, submitting=False) from e
        return None

    async def _fills(self, order_id: str, symbol: str) -> list[Fill]:
        params = {"orderId": order_id} if self._ex.id == "binance" else {}
        try:
            trades = await self._ex.fetch_my_trades(
                symbol if self._ex.id == "binance" else None, None, None, params)
        except Exception as e:
            raise map_error(e, submitting=False) from e
        fills: dict[str, Fill] = {}
        for t in trades:
            trade_id, of_order, qty, price, ts = self._d.read_trade(t.get("info") or {})
            trade_id = trade_id or str(t.get("id") or "")
            if of_order == order_id and qty and price and trade_id:
                fills[trade_id] = Fill(trade_id, qty, price, ts or self._clock())
        return sorted(fills.values(), key=lambda f: (f.ts, f.trade_id))

    async def _balances(self) -> dict[str, Decimal]:
        try:
            await self._markets()
            balance = await self._ex.fetch_balance()
        except Exception as e:
            raise map_error(e, submitting=False) from e
        return self._d.read_balances(balance.get("info") or {})

    async def _mark(self, symbol: str) -> Decimal:
        try:
            ticker = await self._ex.fetch_ticker(symbol)
        except Exception as e:
            raise map_error(e, submitting=False) from e
        price = self._d.last_price(ticker.get("info") or {})
        if price is None:
            raise BrokerRejected(f"{self._ex.id}: no price to value {symbol}")
        return price
