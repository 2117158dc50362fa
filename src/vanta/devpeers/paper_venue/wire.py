"""The paper venue's wire format: problem answers, request parsing and answer bodies.

Every decimal value travels as a string; a JSON number in a request is refused, so a float
can never slip into the simulator.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from http import HTTPStatus
from typing import Any

from aiohttp import web

from vanta.adapters.brokers.paper import PaperOrder
from vanta.application.ports.brokers import BrokerAck, OrderReport
from vanta.devpeers.paper_venue.state import Account, plain

PROBLEM = "application/problem+json"
MAX_ID = 128


class Problem(Exception):
    """An error answer: ``status`` with a stable ``code``."""

    def __init__(self, status: int, code: str, detail: str, *, field: str | None = None,
                 retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.field = field
        self.retry_after = retry_after


def problem_response(p: Problem) -> web.Response:
    body: dict[str, Any] = {"type": "about:blank", "title": HTTPStatus(p.status).phrase,
                            "status": p.status, "code": p.code, "detail": p.detail}
    if p.field is not None:
        body["field"] = p.field
    headers = {"Retry-After": p.retry_after} if p.retry_after is not None else None
    return web.Response(status=p.status, text=json.dumps(body), content_type=PROBLEM,
                        headers=headers)


def check_id(value: str, name: str) -> None:
    if not value or len(value) > MAX_ID:
        raise Problem(400, "invalid_request", f"{name} must be 1-{MAX_ID} characters",
                      field=name)


async def read_body(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return {}
        raise Problem(400, "malformed_json", "a JSON object is required")
    try:
        # numbers are parsed but refused below: decimal values travel as strings
        data = json.loads(raw, parse_float=Decimal)
    except ValueError:
        raise Problem(400, "malformed_json", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise Problem(400, "malformed_json", "the body must be a JSON object")
    return data


def only(body: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise Problem(400, "invalid_request", f"unknown field {unknown[0]}", field=unknown[0])


def text(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise Problem(400, "invalid_request", f"{name} must be a non-empty string", field=name)
    return value


def decimal(body: Mapping[str, Any], key: str, *, required: bool = True,
            positive: bool = True, name: str | None = None) -> Any:
    name = name or key
    value = body.get(key)
    if value is None:
        if required:
            raise Problem(400, "invalid_request", f"{name} is required", field=name)
        return None
    if not isinstance(value, str):
        raise Problem(400, "invalid_request",
                      f"{name} must be a decimal string, not a JSON {type(value).__name__}",
                      field=name)
    try:
        d = Decimal(value.strip())
    except InvalidOperation:
        raise Problem(400, "invalid_request", f"{name} is not a decimal number",
                      field=name) from None
    if not d.is_finite() or (d <= 0 if positive else d < 0):
        raise Problem(400, "invalid_request",
                      f"{name} must be {'positive' if positive else 'zero or more'}",
                      field=name)
    return d


def ack_json(ack: BrokerAck) -> dict[str, Any]:
    return {"client_order_id": ack.client_order_id, "broker_order_id": ack.broker_order_id,
            "status": ack.status.value,
            "submitted_at": None if ack.submitted_at is None else ack.submitted_at.isoformat()}


def report_json(report: OrderReport, orders: Mapping[str, PaperOrder]) -> dict[str, Any]:
    placed = orders.get(report.client_order_id)
    return {"client_order_id": report.client_order_id,
            "broker_order_id": report.broker_order_id, "symbol": report.symbol,
            "side": report.side.value, "status": report.status.value,
            "qty": plain(report.qty), "filled_qty": plain(report.filled_qty),
            "avg_price": None if report.avg_price is None else plain(report.avg_price),
            "reason": report.reason,
            "submitted_at": None if placed is None else placed.submitted_at.isoformat(),
            "fills": [{"trade_id": f.trade_id, "qty": plain(f.qty), "price": plain(f.price),
                       "ts": f.ts.isoformat()} for f in report.fills]}


async def summary_json(account: Account) -> dict[str, Any]:
    broker = account.broker
    positions = await broker.positions()
    nav = await broker.account_nav()
    return {"account_id": account.account_id, "cash": plain(broker.cash), "nav": plain(nav),
            "positions": {s: plain(q) for s, q in positions.items()},
            "orders": broker.order_count()}
