"""In-process stand-ins for ccxt's Binance and Kraken exchange objects: the ccxt methods the
spot adapter calls, answering in ccxt's shapes (the unified dict with the venue's raw answer
under ``info``, as each venue's API documents it). Market orders fill at once at the set
price; balances move exactly. No network, no signing: what they hold to account is the
adapter's dialect (parameters sent, raw fields read), not ccxt's HTTP layer.

A client id the venue has seen is refused as a duplicate, as both venues do for open
orders; an unknown one is ``ccxt.OrderNotFound``.
"""

from __future__ import annotations

import itertools
from decimal import Decimal
from typing import Any

import ccxt.async_support as ccxt_async

_KRAKEN_CODES = {"USD": "ZUSD", "BTC": "XXBT", "ETH": "XETH", "USDC": "USDC"}


class FakeSpotExchange:
    def __init__(self, venue: str, *, balances: dict[str, Decimal],
                 prices: dict[str, Decimal]) -> None:
        assert venue in ("binance", "kraken")
        self.id = venue
        self.markets: dict[str, Any] = {}
        self.logger: Any = None
        self.balances = dict(balances)
        self.prices = {s.replace("-", "/"): p for s, p in prices.items()}
        self.created: list[tuple[str, str, str, str, dict[str, Any]]] = []
        self.orders: dict[str, dict[str, Any]] = {}  # venue client id -> raw order
        self.order_ids: dict[str, str] = {}  # venue client id -> venue order id
        self.trades: list[dict[str, Any]] = []
        self.fail_next: Exception | None = None
        self._ids = itertools.count(1)

    async def load_markets(self) -> dict[str, Any]:
        self.markets = {s: {"id": s.replace("/", ""), "symbol": s} for s in self.prices}
        return self.markets

    async def close(self) -> None:
        return None

    def _check(self) -> None:
        if self.fail_next is not None:
            e, self.fail_next = self.fail_next, None
            raise e

    # ----------------------------------------------------------------- orders

    async def create_order(self, symbol: str, type: str, side: str, amount: str,
                           price: Any = None, params: dict[str, Any] | None = None
                           ) -> dict[str, Any]:
        self._check()
        params = dict(params or {})
        self.created.append((symbol, type, side, amount, params))
        cid = params.get("newClientOrderId" if self.id == "binance" else "cl_ord_id")
        if cid is None or cid in self.orders:
            raise ccxt_async.InvalidOrder(f"{self.id}: duplicate or missing client order id")
        base, quote = symbol.split("/")
        qty, px = Decimal(amount), self.prices[symbol]
        cost = qty * px
        sign = 1 if side == "buy" else -1
        if (side == "buy" and self.balances.get(quote, Decimal(0)) < cost) or \
                (side == "sell" and self.balances.get(base, Decimal(0)) < qty):
            raise ccxt_async.InsufficientFunds(f"{self.id}: insufficient balance")
        self.balances[base] = self.balances.get(base, Decimal(0)) + sign * qty
        self.balances[quote] = self.balances.get(quote, Decimal(0)) - sign * cost
        order_id = f"{self.id.upper()[:1]}{next(self._ids)}"
        trade_id = f"T{next(self._ids)}"
        if self.id == "binance":
            raw: dict[str, Any] = {
                "symbol": symbol.replace("/", ""), "orderId": order_id, "clientOrderId": cid,
                "origQty": amount, "executedQty": amount, "cummulativeQuoteQty": str(cost),
                "status": "FILLED", "type": type.upper(), "side": side.upper(),
                "transactTime": 1_775_000_000_000}
            self.trades.append({"id": trade_id, "info": {
                "id": trade_id, "orderId": order_id, "qty": amount, "price": str(px),
                "time": 1_775_000_000_000}})
        else:
            raw = {"refid": None, "userref": None, "cl_ord_id": cid, "status": "closed",
                   "opentm": 1_775_000_000.25, "vol": amount, "vol_exec": amount,
                   "cost": str(cost), "price": str(px), "reason": None,
                   "descr": {"pair": symbol.replace("/", "").replace("BTC", "XBT"),
                             "type": side, "ordertype": type}}
            self.trades.append({"id": trade_id, "info": {
                "ordertxid": order_id, "vol": amount, "price": str(px),
                "time": 1_775_000_000.5}})
        self.orders[cid] = raw
        self.order_ids[cid] = order_id
        return {"id": order_id, "info": raw}

    async def fetch_order(self, id: str | None, symbol: str | None = None,
                          params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._check()
        assert self.id == "binance" and symbol is not None
        raw = self.orders.get(str((params or {}).get("origClientOrderId")))
        if raw is None or raw["symbol"] != symbol.replace("/", ""):
            raise ccxt_async.OrderNotFound("binance: Order does not exist.")
        return {"id": raw["orderId"], "info": raw}

    async def fetch_open_orders(self, symbol: Any = None, since: Any = None,
                                limit: Any = None, params: dict[str, Any] | None = None
                                ) -> list[dict[str, Any]]:
        self._check()
        return []  # every order here fills at once

    async def fetch_closed_orders(self, symbol: Any = None, since: Any = None,
                                  limit: Any = None, params: dict[str, Any] | None = None
                                  ) -> list[dict[str, Any]]:
        self._check()
        assert self.id == "kraken"
        cid = (params or {}).get("cl_ord_id")
        # Kraken keys orders by txid; ccxt puts that key in ``id``, not in ``info``
        return [{"id": self.order_ids[c], "info": raw} for c, raw in self.orders.items()
                if c == cid]

    async def cancel_order(self, id: str, symbol: str | None = None) -> dict[str, Any]:
        raise ccxt_async.OrderNotFound(f"{self.id}: order is closed")

    async def fetch_my_trades(self, symbol: Any = None, since: Any = None,
                              limit: Any = None, params: dict[str, Any] | None = None
                              ) -> list[dict[str, Any]]:
        self._check()
        return list(self.trades)

    # -------------------------------------------------------------- balances

    async def fetch_balance(self, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._check()
        if self.id == "binance":
            info: dict[str, Any] = {"balances": [
                {"asset": c, "free": str(v), "locked": "0"} for c, v in self.balances.items()]}
        else:
            info = {"error": [], "result": {_KRAKEN_CODES.get(c, c): str(v)
                                            for c, v in self.balances.items()}}
        return {"info": info}

    async def fetch_ticker(self, symbol: str) -> dict[str, Any]:
        px = str(self.prices[symbol])
        return {"info": {"lastPrice": px} if self.id == "binance" else {"c": [px, "1"]}}
