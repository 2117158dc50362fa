"""Crypto venues through the ``ccxt`` library (async). Coinbase Advanced Trade first (and, for
now, only: another exchange needs its own request dialect and status table here).

Only translation. For Coinbase the adapter calls ``createOrder`` with the venue's own
``client_order_id`` and an explicit ``order_configuration`` (exact decimal strings, base size
for buys and sells), then reads orders with ``fetchOrder``/``fetchOrders``, executions with
``fetchMyTrades`` (``order_ids`` filter), holdings with ``fetchBalance`` and marks with
``fetchTicker``. Numbers are read from the venue's raw answer (``info``), never from ccxt's
float fields.

Things worth knowing:

* ccxt 4.5's Coinbase ``createOrder`` drops a unified ``clientOrderId`` param and sends
  ``ccxt-<uuid>`` instead, so the adapter passes the raw ``client_order_id`` (which ccxt merges
  into the request body last).
* Coinbase's Create Order answers a ``client_order_id`` it has seen before with the existing
  order instead of creating another; the adapter reads the order back after every create, so a
  reused id naming a *different* order is caught as ``client_order_id_conflict``. Should the
  venue refuse a duplicate instead (ccxt ``DuplicateOrderId``, or any refusal), the adapter
  looks the client id up before reporting a rejection and returns the existing order's ack.
* Coinbase has no look-up by client order id; the adapter remembers client id -> order id and
  otherwise pages through ``fetchOrders`` to find it.
* ``day`` is sent as good-till-cancelled (crypto has no session close); a market order is IOC.
* Policy on top of ccxt's mapping: any 5xx or 429 is retryable (:class:`BrokerUnavailable`)
  whatever its body says, and a 404 on an order path is :class:`OrderNotFound`.
* Positions are the non-quote balances (available + hold) keyed ``BASE/QUOTE``; NAV is the quote
  balance plus each position at the last trade price of ``BASE/QUOTE``.
* ccxt logs request headers at DEBUG; the adapter gives the exchange a logger that redacts them.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from vanta.adapters.brokers import _http
from vanta.adapters.brokers.ccxt_venue import coinbase
from vanta.adapters.brokers.ccxt_venue.errors import LOGGER, install_status_policy, map_error
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
)

if TYPE_CHECKING:
    import ccxt.async_support as ccxt_async

SUPPORTED_EXCHANGES = frozenset({"coinbase"})
_MAX_PAGES = 50


class CcxtBroker:
    """:class:`~vanta.application.ports.brokers.BrokerGateway` over one ccxt async exchange."""

    def __init__(self, exchange: ccxt_async.Exchange, *, quote_currency: str = "USD",
                 clock: Clock = utcnow) -> None:
        import ccxt.async_support  # noqa: F401  (fail early when the SDK is missing)

        if exchange.id not in SUPPORTED_EXCHANGES:
            raise ValueError(f"ccxt exchange {exchange.id!r} has no dialect here yet; "
                             f"supported: {sorted(SUPPORTED_EXCHANGES)}")
        self._ex = exchange
        self._quote = quote_currency.upper()
        self._clock = clock
        self._order_ids: dict[str, str] = {}
        exchange.logger = LOGGER
        install_status_policy(exchange)

    @classmethod
    def coinbase(cls, api_key: str, api_secret: str, *, api_url: str | None = None,
                 timeout_ms: int = 10_000, quote_currency: str = "USD",
                 rate_limit: bool = True, clock: Clock = utcnow) -> CcxtBroker:
        """Coinbase Advanced Trade with a CDP key (``organizations/…/apiKeys/…`` and its EC
        private key PEM). ``api_url`` replaces ``urls['api']['rest']`` (a sandbox or a local
        fake); ``rate_limit`` keeps ccxt's client-side throttle on (turn it off only for a
        local fake)."""
        import ccxt.async_support as ccxt_async

        exchange = ccxt_async.coinbase({
            "apiKey": api_key, "secret": api_secret, "timeout": timeout_ms,
            "enableRateLimit": rate_limit,
        })
        if api_url is not None:
            exchange.urls["api"] = {"rest": api_url.rstrip("/")}
        return cls(exchange, quote_currency=quote_currency, clock=clock)

    def __repr__(self) -> str:
        return f"CcxtBroker(exchange={self._ex.id!r}, quote={self._quote!r})"

    @property
    def exchange(self) -> ccxt_async.Exchange:
        return self._ex

    # ----------------------------------------------------------------- gateway

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        import ccxt.async_support as ccxt_async

        symbol = self._symbol(order.symbol)
        price = _http.plain(order.limit_price) if order.limit_price is not None else None
        try:
            await self._markets()
            created = await self._ex.create_order(
                symbol, order.order_type, order.side.value, _http.plain(order.qty), price,
                coinbase.order_params(order))
        except ccxt_async.DuplicateOrderId:
            order_id = await self._order_id(order.client_order_id)
        except Exception as e:
            mapped = map_error(e, submitting=True)
            if not isinstance(mapped, BrokerRejected):
                raise mapped from e
            # a refusal may be the venue's way of saying "that client id exists": look first
            try:
                order_id = await self._order_id(order.client_order_id)
            except OrderNotFound:
                raise mapped from e
        else:
            order_id = str(created.get("id") or "")
            echoed = (created.get("info") or {}).get("client_order_id")
            if not order_id or (echoed is not None and echoed != order.client_order_id):
                raise BrokerError(f"{self._ex.id}: create answer names another order")
        self._order_ids[order.client_order_id] = order_id
        info = await self._fetch_order_info(order_id, symbol)
        _http.check_same(order, symbol=None, side=_http.side_of(info.get("side")),
                         qty=coinbase.order_qty(info), venue=self._ex.id)
        if info.get("product_id") not in (None, self._market_id(symbol)):
            raise BrokerRejected(f"{self._ex.id}: client order id {order.client_order_id} "
                                 "already names a different order",
                                 code="client_order_id_conflict")
        return BrokerAck(client_order_id=order.client_order_id, broker_order_id=order_id,
                         status=coinbase.status(info),
                         submitted_at=_http.parse_ts(info.get("created_time")))

    async def cancel(self, client_order_id: str) -> None:
        order_id = await self._order_id(client_order_id)
        info = await self._fetch_order_info(order_id, None)
        if coinbase.status(info) in TERMINAL_ORDER_STATUSES:
            return
        try:
            await self._ex.cancel_order(order_id)
        except Exception as e:
            mapped = map_error(e, submitting=True)
            if isinstance(mapped, BrokerUnavailable):
                raise mapped from e
            again = await self._fetch_order_info(order_id, None)
            if coinbase.status(again) in TERMINAL_ORDER_STATUSES:
                return
            raise BrokerRejected(f"{self._ex.id}: cancel refused: {mapped.reason}",
                                 code=mapped.code) from e

    async def order_report(self, client_order_id: str) -> OrderReport:
        order_id = await self._order_id(client_order_id)
        info = await self._fetch_order_info(order_id, None)
        fills = await self._fills(order_id)
        filled = _http.dec0(info.get("filled_size"))
        qty = coinbase.order_qty(info) or filled
        avg = _http.dec(info.get("average_filled_price")) if filled > 0 else None
        side = _http.side_of(info.get("side"))
        if side is None:
            raise BrokerError(f"{self._ex.id}: order {order_id} has no side")
        return OrderReport(
            client_order_id=client_order_id, broker_order_id=order_id,
            symbol=self._unified(str(info.get("product_id") or info.get("symbol") or "")),
            side=side, status=coinbase.status(info), qty=qty, filled_qty=filled, avg_price=avg,
            fills=tuple(fills), reason=coinbase.reason(info))

    async def positions(self) -> dict[str, Decimal]:
        balances = await self._balances()
        return {f"{cur}/{self._quote}": amount for cur, amount in sorted(balances.items())
                if cur != self._quote and amount != 0}

    async def account_nav(self) -> Decimal:
        balances = await self._balances()
        nav = balances.get(self._quote, Decimal(0))
        for cur, amount in sorted(balances.items()):
            if cur == self._quote or amount == 0:
                continue
            nav += amount * await self._mark(f"{cur}/{self._quote}")
        return nav

    async def balances(self) -> dict[str, Decimal]:
        return {self._quote: (await self._balances()).get(self._quote, Decimal(0))}

    async def close(self) -> None:
        await self._ex.close()

    # --------------------------------------------------------------- internals

    async def _markets(self) -> None:
        if not self._ex.markets:
            await self._ex.load_markets()

    def _symbol(self, symbol: str) -> str:
        return self._unified(symbol)

    @staticmethod
    def _unified(symbol: str) -> str:
        symbol = symbol.upper()
        return symbol if "/" in symbol else symbol.replace("-", "/", 1)

    def _market_id(self, symbol: str) -> str:
        market = (self._ex.markets or {}).get(symbol)
        return str(market["id"]) if market else symbol.replace("/", "-")

    async def _order_id(self, client_order_id: str) -> str:
        known = self._order_ids.get(client_order_id)
        if known is not None:
            return known
        try:
            await self._markets()
            cursor: str | None = None
            for _ in range(_MAX_PAGES):
                params: dict[str, Any] = {"cursor": cursor} if cursor else {}
                orders = await self._ex.fetch_orders(None, None, 100, params)
                for o in orders:
                    if o.get("clientOrderId") == client_order_id and o.get("id"):
                        self._order_ids[client_order_id] = str(o["id"])
                        return str(o["id"])
                cursor = (orders[0].get("info") or {}).get("cursor") if orders else None
                if not cursor:
                    break
        except Exception as e:
            raise map_error(e, submitting=False) from e
        raise OrderNotFound(f"{self._ex.id}: no order with client order id {client_order_id}")

    async def _fetch_order_info(self, order_id: str, symbol: str | None) -> dict[str, Any]:
        try:
            await self._markets()
            fetched = await self._ex.fetch_order(order_id, symbol)
        except Exception as e:
            raise map_error(e, submitting=False) from e
        return dict(fetched.get("info") or {})

    async def _fills(self, order_id: str) -> list[Fill]:
        fills: dict[str, Fill] = {}
        cursor: str | None = None
        try:
            for _ in range(_MAX_PAGES):
                params: dict[str, Any] = {"order_ids": [order_id]}
                if cursor:
                    params["cursor"] = cursor
                trades = await self._ex.fetch_my_trades(None, None, None, params)
                for t in trades:
                    if str(t.get("order")) != order_id:
                        continue
                    fill = self._fill(t)
                    fills[fill.trade_id] = fill
                cursor = (trades[0].get("info") or {}).get("cursor") if trades else None
                if not cursor:
                    break
        except Exception as e:
            raise map_error(e, submitting=False) from e
        return sorted(fills.values(), key=lambda f: (f.ts, f.trade_id))

    def _fill(self, trade: dict[str, Any]) -> Fill:
        info = trade.get("info") or {}
        price = _http.dec(info.get("price"))
        size = _http.dec(info.get("size"))
        if price is not None and size is not None and info.get("size_in_quote") is True:
            size = size / price
        ts = _http.parse_ts(info.get("trade_time"))
        trade_id = info.get("trade_id") or trade.get("id")
        if price is None or size is None or not trade_id:
            raise BrokerError(f"{self._ex.id}: malformed trade {trade.get('id')}")
        return Fill(trade_id=str(trade_id), qty=size, price=price, ts=ts or self._clock())

    async def _balances(self) -> dict[str, Decimal]:
        try:
            await self._markets()
            # the Advanced Trade accounts endpoint (v3), not the v2 wallet API
            balance = await self._ex.fetch_balance({"v3": True})
        except Exception as e:
            raise map_error(e, submitting=False) from e
        accounts = (balance.get("info") or {}).get("accounts")
        if not isinstance(accounts, list):
            raise BrokerError(f"{self._ex.id}: balance answer without accounts")
        totals: dict[str, Decimal] = {}
        for a in accounts:
            cur = str(a.get("currency", "")).upper()
            amount = (_http.dec0((a.get("available_balance") or {}).get("value"))
                      + _http.dec0((a.get("hold") or {}).get("value")))
            totals[cur] = totals.get(cur, Decimal(0)) + amount
        return totals

    async def _mark(self, symbol: str) -> Decimal:
        try:
            ticker = await self._ex.fetch_ticker(symbol)
        except Exception as e:
            raise map_error(e, submitting=False) from e
        info = ticker.get("info") or {}
        price = _http.dec(info.get("price")) if isinstance(info, dict) else None
        price = price or _http.dec(ticker.get("last"))
        if price is None:
            raise BrokerError(f"{self._ex.id}: no price to value {symbol}")
        return price


