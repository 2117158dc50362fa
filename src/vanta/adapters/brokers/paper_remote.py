"""The paper venue over HTTP: a :class:`~vanta.application.ports.brokers.BrokerGateway` for one
account of a ``vanta paper venue`` process (:mod:`vanta.devpeers.paper_venue`).

Only translation, like the other HTTP adapters:

* the account is opened (``PUT /v1/accounts/{account}``, idempotent, with the ``cash`` to
  start from) before the first call, and opened again if the venue says it does not know it
  (a venue restarted without its state file);
* ``submit`` posts the order by client order id; the venue answers the existing order for a
  known id (``200``, same ack) and ``422 client_order_id_conflict`` for a different order under
  that id, so a retried submit never places a second order;
* ``set_price`` (called synchronously by the dispatcher with the manager's ``ref_price``) only
  records the mark; it is sent (``PUT .../prices/{symbol}``) before the next submit;
* quantities and prices travel as strings and come back as ``Decimal``; a JSON number in an
  answer is refused rather than read through a float.

Errors: connection errors, timeouts, ``429`` and ``5xx`` raise
:class:`~vanta.application.ports.brokers.BrokerUnavailable` (with the venue's ``code`` and
``Retry-After``); ``404 order_not_found`` raises
:class:`~vanta.application.ports.brokers.OrderNotFound`; every other ``4xx`` is a
refusal, :class:`~vanta.application.ports.brokers.BrokerRejected` with the venue's code. An
answer the adapter cannot read is treated as an outage (retryable). A malformed venue URL or
cash amount is a refusal (``invalid_venue_url``, ``invalid_cash``) raised on the first call,
so a badly configured follower fails its children instead of crashing the worker.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import httpx

from vanta.adapters.brokers import _http
from vanta.application.ports.brokers import (
    BrokerAck,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    Fill,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.domain.orders import Side

log = logging.getLogger("vanta.brokers")
VENUE = "paper-venue"
_EXCERPT = 300


class _Malformed(Exception):
    pass


class RemotePaperBroker:
    """One account at a paper venue."""

    def __init__(self, url: str, account_id: str, *, timeout: float = 5.0,
                 cash: Decimal | str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.account_id = account_id
        self._invalid: BrokerRejected | None = None
        self._cash: Decimal | None = None
        try:
            parsed = httpx.URL(self.url)
            ok = parsed.scheme in ("http", "https") and bool(parsed.host)
            if parsed.userinfo:  # never kept, never shown
                ok = False
                self.url = str(parsed.copy_with(username=None, password=None))
        except (httpx.InvalidURL, TypeError, ValueError):
            ok = False
        if not ok:
            self._invalid = BrokerRejected(f"{VENUE}: the venue URL is not a plain http(s) URL",
                                           code="invalid_venue_url")
        if cash is not None:
            try:
                self._cash = cash if isinstance(cash, Decimal) else Decimal(str(cash).strip())
            except InvalidOperation:
                self._cash = None
            if self._cash is None or not self._cash.is_finite() or self._cash < 0:
                self._invalid = self._invalid or BrokerRejected(
                    f"{VENUE}: cash must be a decimal amount >= 0", code="invalid_cash")
        self._client = httpx.AsyncClient(
            base_url=self.url if ok else "http://invalid.invalid", timeout=timeout,
            transport=transport, follow_redirects=False,
            headers={"Accept": "application/json"})
        self._account_path = f"/v1/accounts/{quote(account_id, safe='')}"
        self._opened = False
        self._open_lock: asyncio.Lock | None = None
        self._marks: dict[str, Decimal] = {}

    def __repr__(self) -> str:
        return f"RemotePaperBroker(url={self.url!r}, account_id={self.account_id!r})"

    # ---------------------------------------------------------------------- gateway

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        await self._flush_marks()
        body: dict[str, Any] = {"client_order_id": order.client_order_id,
                                "symbol": order.symbol, "side": order.side.value,
                                "qty": _plain(order.qty), "tif": order.tif.value}
        if order.limit_price is not None:
            body["limit_price"] = _plain(order.limit_price)
        data = await self._call("POST", "/orders", json=body)
        try:
            return BrokerAck(client_order_id=_str(data, "client_order_id"),
                             broker_order_id=_str(data, "broker_order_id"),
                             status=OrderStatus(_str(data, "status")),
                             submitted_at=_ts(data.get("submitted_at"), required=False))
        except (_Malformed, ValueError) as e:
            raise _unreadable("POST /orders", e) from None

    async def cancel(self, client_order_id: str) -> None:
        await self._call("POST", f"/orders/{quote(client_order_id, safe='')}/cancel")

    async def order_report(self, client_order_id: str) -> OrderReport:
        data = await self._call("GET", f"/orders/{quote(client_order_id, safe='')}")
        try:
            return _report(data)
        except (_Malformed, ValueError, TypeError) as e:
            raise _unreadable("GET /orders/{id}", e) from None

    async def positions(self) -> dict[str, Decimal]:
        data = await self._call("GET", "/positions")
        try:
            held = data.get("positions")
            if not isinstance(held, dict):
                raise _Malformed("positions must be an object")
            out = {str(s): _dec(held, s) for s in held}
        except (_Malformed, ValueError) as e:
            raise _unreadable("GET /positions", e) from None
        return {s: q for s, q in sorted(out.items()) if q != 0}

    async def account_nav(self) -> Decimal:
        data = await self._call("GET", "/nav")
        try:
            return _dec(data, "nav")
        except _Malformed as e:
            raise _unreadable("GET /nav", e) from None

    async def balances(self) -> dict[str, Decimal]:
        data = await self._call("GET", "/nav")  # the venue reports cash beside the NAV
        try:
            return {"USD": _dec(data, "cash")}
        except _Malformed as e:
            raise _unreadable("GET /nav", e) from None

    async def close(self) -> None:
        await self._client.aclose()

    # ---------------------------------------------------------------------- extras

    def set_price(self, symbol: str, price: Decimal) -> None:
        """Mark ``symbol`` at ``price``; sent to the venue before the next submit."""
        if not isinstance(price, Decimal) or not price.is_finite() or price <= 0:
            raise ValueError("price must be a positive Decimal")
        self._marks[symbol.upper()] = price

    async def mark_price(self, symbol: str, price: Decimal) -> None:
        """Mark ``symbol`` at ``price`` now."""
        self.set_price(symbol, price)
        await self._flush_marks()

    # -------------------------------------------------------------------- internals

    async def _flush_marks(self) -> None:
        for symbol, price in list(self._marks.items()):
            await self._call("PUT", f"/prices/{quote(symbol, safe='')}",
                             json={"price": _plain(price)})
            if self._marks.get(symbol) == price:
                del self._marks[symbol]

    async def _ensure_open(self) -> None:
        if self._opened:
            return
        if self._open_lock is None:
            self._open_lock = asyncio.Lock()
        async with self._open_lock:
            if self._opened:
                return
            body = {} if self._cash is None else {"cash": _plain(self._cash)}
            await self._send("PUT", self._account_path, json=body)
            self._opened = True

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        for attempt in (1, 2):
            await self._ensure_open()
            try:
                return await self._send(method, self._account_path + path, **kwargs)
            except _AccountGone:
                # The venue lost the account (restarted without its state): open it again
                # once. Its orders are gone; order reports will say so.
                self._opened = False
                if attempt == 2:
                    break
                log.warning("paper venue does not know the account; opening it again",
                            extra={"account_id": self.account_id})
        raise BrokerUnavailable(f"{VENUE}: the venue keeps losing account {self.account_id}",
                                code="account_not_found", status=404)

    async def _send(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        if self._invalid is not None:
            raise self._invalid
        where = f"{method} {_template(path, self._account_path)}"
        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TimeoutException as e:
            raise BrokerUnavailable(f"{VENUE}: {where} timed out", code="timeout") from e
        except httpx.RequestError as e:
            raise BrokerUnavailable(f"{VENUE}: {where} failed: {type(e).__name__}",
                                    code="connection_error") from e
        status = response.status_code
        data = _json(response)
        code = data.get("code") if isinstance(data, dict) else None
        detail = (data.get("detail") if isinstance(data, dict) else None) or \
            response.text[:_EXCERPT].strip()
        if 200 <= status < 300:
            if not isinstance(data, dict):
                raise BrokerUnavailable(f"{VENUE}: {where}: unreadable answer",
                                        code="malformed_answer", status=status)
            return data
        if status == 429 or status >= 500:
            raise BrokerUnavailable(f"{VENUE}: {where} answered {status}: {detail}",
                                    code=str(code or ("rate_limited" if status == 429
                                                      else "server_error")),
                                    status=status, retry_after=_http.retry_after(response))
        if status == 404 and code == "account_not_found":
            raise _AccountGone()
        if status == 404 and code == "order_not_found":
            raise OrderNotFound(f"{VENUE}: {detail}", code="not_found", status=404)
        if 400 <= status < 500:
            raise BrokerRejected(f"{VENUE}: {detail}", code=str(code or "rejected"),
                                 status=status)
        raise BrokerUnavailable(f"{VENUE}: unexpected answer {status} to {where}",
                                status=status)


class _AccountGone(Exception):
    pass


def _template(path: str, account_path: str) -> str:
    return path.replace(account_path, "/v1/accounts/{account}", 1)


def _unreadable(where: str, error: Exception) -> BrokerUnavailable:
    return BrokerUnavailable(f"{VENUE}: {where}: unreadable answer ({error})",
                             code="malformed_answer")


def _json(response: httpx.Response) -> Any:
    try:
        # JSON numbers become Decimal (never float) only to be refused where a value is read
        return json.loads(response.content or b"null", parse_float=Decimal)
    except ValueError:
        return None


def _plain(d: Decimal) -> str:
    return format(d, "f")


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{key} must be a non-empty string")
    return value


def _dec(data: Mapping[str, Any], key: str) -> Decimal:
    value = data.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"{key} must be a decimal string")
    try:
        d = Decimal(value)
    except InvalidOperation:
        raise _Malformed(f"{key} is not a decimal number") from None
    if not d.is_finite():
        raise _Malformed(f"{key} must be finite")
    return d


def _ts(value: object, *, required: bool = True) -> datetime | None:
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise _Malformed("timestamps must be strings")
    ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def _report(data: Mapping[str, Any]) -> OrderReport:
    fills = data.get("fills")
    if not isinstance(fills, list):
        raise _Malformed("fills must be a list")
    parsed = []
    for f in fills:
        if not isinstance(f, dict):
            raise _Malformed("a fill must be an object")
        ts = _ts(f.get("ts"))
        assert ts is not None
        parsed.append(Fill(trade_id=_str(f, "trade_id"), qty=_dec(f, "qty"),
                           price=_dec(f, "price"), ts=ts))
    reason = data.get("reason")
    return OrderReport(
        client_order_id=_str(data, "client_order_id"),
        broker_order_id=_str(data, "broker_order_id"), symbol=_str(data, "symbol"),
        side=Side(_str(data, "side")), status=OrderStatus(_str(data, "status")),
        qty=_dec(data, "qty"), filled_qty=_dec(data, "filled_qty"),
        avg_price=None if data.get("avg_price") is None else _dec(data, "avg_price"),
        fills=tuple(parsed), reason=None if reason is None else str(reason))


__all__ = ["RemotePaperBroker"]
