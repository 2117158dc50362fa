"""Shared plumbing of the HTTP broker adapters: transport errors, number and time parsing.

Credentials live only in the ``httpx.AsyncClient`` default headers; nothing here puts a header
into a message, a log line or a ``repr``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from vanta.application.ports.brokers import (
    BrokerAuthFailed,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
)
from vanta.domain.money import normalize
from vanta.domain.orders import Side

_EXCERPT = 300
_FRACTION = re.compile(r"\.(\d+)")


async def request(client: httpx.AsyncClient, venue: str, method: str, url: str,
                  **kwargs: Any) -> httpx.Response:
    """Send one request; transport trouble, 429 and 5xx become :class:`BrokerUnavailable`,
    401 becomes :class:`BrokerAuthFailed`. Any other status is returned for the adapter."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TimeoutException as e:
        raise BrokerUnavailable(f"{venue}: {method} {_path(url)} timed out",
                                code="timeout") from e
    except httpx.RequestError as e:
        raise BrokerUnavailable(f"{venue}: {method} {_path(url)} failed: {type(e).__name__}",
                                code="connection_error") from e
    status = response.status_code
    if status == 429 or status >= 500:
        raise BrokerUnavailable(
            f"{venue}: {method} {_path(url)} answered {status}: {excerpt(response)}",
            code="rate_limited" if status == 429 else "server_error", status=status,
            retry_after=retry_after(response))
    if status == 401:
        raise BrokerAuthFailed(f"{venue}: credentials refused ({status})", code="unauthorized",
                               status=status)
    return response


def json_body(response: httpx.Response) -> Any:
    """The body as JSON with every non-integer number read as an exact ``Decimal``."""
    try:
        return json.loads(response.content or b"null", parse_float=Decimal)
    except ValueError:
        return None


def excerpt(response: httpx.Response) -> str:
    return response.text[:_EXCERPT].strip()


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        return None


def dec(value: object) -> Decimal | None:
    """A venue number (string, int or Decimal; a float only via its repr) as a canonical
    Decimal: ``"9.00000000"`` and ``9`` both become ``Decimal("9")``."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float):
        value = repr(value)
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        return None
    return normalize(d) if d.is_finite() else None


def dec0(value: object) -> Decimal:
    d = dec(value)
    return d if d is not None else Decimal(0)


def plain(d: Decimal) -> str:
    """Decimal as a plain string without exponent: 1E+1 -> '10', 0.50 -> '0.5'."""
    return format(d.normalize(), "f")


def side_of(value: object) -> Side | None:
    """buy, BUY, buy_to_cover -> BUY; sell, SELL, sell_short -> SELL."""
    text = str(value or "").lower()
    if text.startswith("buy"):
        return Side.BUY
    if text.startswith("sell"):
        return Side.SELL
    return None


def parse_ts(value: object) -> datetime | None:
    """RFC 3339 timestamps as venues write them (Z, up to nanoseconds)."""
    if not isinstance(value, str) or not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text, count=1)
    try:
        ts = datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)


def check_same(order: BrokerOrder, *, symbol: str | None, side: Side | None,
               qty: Decimal | None, venue: str) -> None:
    """A duplicate client order id must name the same order; anything else is a conflict."""
    same = ((symbol is None or symbol.upper() == order.symbol.upper())
            and (side is None or side is order.side)
            and (qty is None or qty == order.qty))
    if not same:
        raise BrokerRejected(
            f"{venue}: client order id {order.client_order_id} already names a different order",
            code="client_order_id_conflict")


def _path(url: str) -> str:
    return httpx.URL(url).path if "://" in url else url
