"""The paper venue's HTTP API: routes, error answers and serving on a socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aiohttp import web

from vanta.application.ports.brokers import (
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
)
from vanta.devpeers.paper_venue.state import Account, orders_of, plain, report
from vanta.devpeers.paper_venue.wire import (
    Problem,
    ack_json,
    decimal,
    only,
    problem_response,
    read_body,
    report_json,
    summary_json,
    text,
)
from vanta.domain.orders import Side, TimeInForce

if TYPE_CHECKING:
    from vanta.devpeers.paper_venue.venue import PaperVenue

log = logging.getLogger("vanta.paper_venue")

MAX_STEP_TICKS = 10_000
# the accounts a request touched: saved before its answer leaves
_TOUCHED: ContextVar[set[str]] = ContextVar("paper_venue_touched")
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(venue: PaperVenue) -> web.Application:
    routes = _Routes(venue)
    app = web.Application(middlewares=[routes.middleware], client_max_size=64 * 1024)
    r = app.router
    r.add_get("/healthz", routes.healthz)
    r.add_put("/v1/accounts/{account}", routes.open)
    r.add_get("/v1/accounts/{account}", routes.summary)
    r.add_post("/v1/accounts/{account}/orders", routes.submit)
    r.add_get("/v1/accounts/{account}/orders/{cid}", routes.order)
    r.add_post("/v1/accounts/{account}/orders/{cid}/cancel", routes.cancel)
    r.add_get("/v1/accounts/{account}/positions", routes.positions)
    r.add_get("/v1/accounts/{account}/nav", routes.nav)
    r.add_put("/v1/accounts/{account}/prices/{symbol}", routes.set_price)
    r.add_get("/v1/admin/orders", routes.admin_orders)
    r.add_post("/v1/admin/accounts/{account}/step", routes.admin_step)
    r.add_put("/v1/admin/accounts/{account}/fault", routes.admin_fault)
    r.add_post("/v1/admin/accounts/{account}/orders/{cid}/reject", routes.admin_reject)
    app.on_shutdown.append(routes.on_shutdown)
    return app


def _as_problem(error: Exception) -> Problem:
    """The answer to an exception a handler raised."""
    if isinstance(error, Problem):
        return error
    if isinstance(error, BrokerRejected):
        return Problem(422, error.code or "rejected", error.reason)
    if isinstance(error, OrderNotFound):
        return Problem(404, "order_not_found", error.reason)
    if isinstance(error, BrokerUnavailable):
        return Problem(503, error.code or "unavailable", error.reason, retry_after="1")
    if isinstance(error, web.HTTPException):  # no such route, method not allowed, body too big
        code = {404: "route_not_found", 405: "method_not_allowed",
                413: "body_too_large"}.get(error.status, "http_error")
        return Problem(error.status, code, error.reason)
    log.error("paper venue: request failed", exc_info=error)
    return Problem(500, "internal_error", "unexpected venue error")


class _Routes:
    def __init__(self, venue: PaperVenue) -> None:
        self.venue = venue

    @web.middleware
    async def middleware(self, request: web.Request, handler: _Handler) -> web.StreamResponse:
        touched: set[str] = set()
        token = _TOUCHED.set(touched)
        try:
            try:
                return await handler(request)
            finally:
                # before the answer leaves: what a client was told is on disk
                self.venue.persist(touched)
                _TOUCHED.reset(token)
        except Exception as e:
            return problem_response(_as_problem(e))

    def _use(self, request: web.Request) -> Account:
        account = self.venue.account(request.match_info["account"])
        _TOUCHED.get().add(account.account_id)
        status = account.fault_status
        if status is not None:
            raise Problem(status, "injected_fault", f"paper venue: injected {status}",
                          retry_after="0" if status == 429 else "1")
        return account

    async def healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "accounts": len(self.venue.accounts)})

    async def open(self, request: web.Request) -> web.Response:
        body = await read_body(request, optional=True)
        only(body, {"cash", "prices"})
        cash = decimal(body, "cash", required=False, positive=False)
        prices_raw = body.get("prices")
        prices: dict[str, Decimal] | None = None
        if prices_raw is not None:
            if not isinstance(prices_raw, dict):
                raise Problem(400, "invalid_request", "prices must be an object",
                              field="prices")
            prices = {str(s).upper(): decimal(prices_raw, s, name=f"prices.{s}")
                      for s in prices_raw}
        account_id = request.match_info["account"]
        if account_id in self.venue.accounts:
            self._use(request)  # an injected fault answers here too
        try:
            account, created = self.venue.open_account(account_id, cash=cash, prices=prices)
        except ValueError as e:
            raise Problem(400, "invalid_request", str(e)) from None
        _TOUCHED.get().add(account_id)
        return web.json_response({**(await summary_json(account)), "created": created},
                                 status=201 if created else 200)

    async def summary(self, request: web.Request) -> web.Response:
        return web.json_response(await summary_json(self._use(request)))

    async def submit(self, request: web.Request) -> web.Response:
        account = self._use(request)
        body = await read_body(request)
        only(body, {"client_order_id", "symbol", "side", "qty", "tif", "limit_price"})
        cid = text(body, "client_order_id")
        try:
            order = BrokerOrder(client_order_id=cid, symbol=text(body, "symbol"),
                                side=Side(text(body, "side")),
                                qty=decimal(body, "qty"),
                                tif=TimeInForce(body.get("tif") or "day"),
                                limit_price=decimal(body, "limit_price", required=False))
        except (ValueError, TypeError) as e:
            raise Problem(400, "invalid_request", f"invalid order: {e}") from None
        account.submits[cid] += 1
        existed = account.broker.order_count(cid) > 0
        ack = await account.broker.submit(order)
        if self.venue.submit_delay > timedelta(0):
            self.venue.persist(_TOUCHED.get())
            await asyncio.sleep(self.venue.submit_delay.total_seconds())
        return web.json_response({**ack_json(ack), "duplicate": existed},
                                 status=200 if existed else 201)

    async def order(self, request: web.Request) -> web.Response:
        account = self._use(request)
        got = await account.broker.order_report(request.match_info["cid"])
        return web.json_response(report_json(got, orders_of(account.broker)))

    async def cancel(self, request: web.Request) -> web.Response:
        account = self._use(request)
        cid = request.match_info["cid"]
        await account.broker.cancel(cid)
        got = await account.broker.order_report(cid)
        return web.json_response(report_json(got, orders_of(account.broker)))

    async def positions(self, request: web.Request) -> web.Response:
        account = self._use(request)
        held = await account.broker.positions()
        return web.json_response({"positions": {s: plain(q) for s, q in held.items()}})

    async def nav(self, request: web.Request) -> web.Response:
        account = self._use(request)
        nav = await account.broker.account_nav()
        return web.json_response({"nav": plain(nav), "cash": plain(account.broker.cash)})

    async def set_price(self, request: web.Request) -> web.Response:
        account = self._use(request)
        body = await read_body(request)
        only(body, {"price"})
        price = decimal(body, "price")
        symbol = request.match_info["symbol"].upper()
        if not symbol or len(symbol) > 64:
            raise Problem(400, "invalid_request", "symbol must be 1-64 characters",
                          field="symbol")
        account.broker.set_price(symbol, price)
        return web.json_response({"symbol": symbol, "price": plain(price)})

    async def admin_orders(self, request: web.Request) -> web.Response:
        summary = request.query.get("summary", "") not in ("", "0", "false")
        return web.json_response(self.venue.listing(summary=summary))

    async def admin_step(self, request: web.Request) -> web.Response:
        account = self.venue.account(request.match_info["account"])
        _TOUCHED.get().add(account.account_id)
        body = await read_body(request, optional=True)
        only(body, {"ticks"})
        ticks = body.get("ticks", 1)
        if not isinstance(ticks, int) or isinstance(ticks, bool) or \
                not 0 <= ticks <= MAX_STEP_TICKS:
            raise Problem(400, "invalid_request", f"ticks must be 0-{MAX_STEP_TICKS}",
                          field="ticks")
        account.broker.step(ticks)
        return web.json_response({"ticks": ticks})

    async def admin_fault(self, request: web.Request) -> web.Response:
        account = self.venue.account(request.match_info["account"])
        body = await read_body(request)
        only(body, {"status", "lose_next_acks"})
        status = body.get("status")
        if status is not None and (not isinstance(status, int) or isinstance(status, bool)):
            raise Problem(400, "invalid_request", "status must be an integer or null",
                          field="status")
        try:
            self.venue.set_fault(account.account_id, status)
        except ValueError as e:
            raise Problem(400, "invalid_request", str(e), field="status") from None
        lose = body.get("lose_next_acks", 0)
        if not isinstance(lose, int) or isinstance(lose, bool) or lose < 0:
            raise Problem(400, "invalid_request", "lose_next_acks must be >= 0",
                          field="lose_next_acks")
        if lose:
            account.broker.lose_next_ack(lose)
        return web.json_response({"status": status, "lose_next_acks": lose})

    async def admin_reject(self, request: web.Request) -> web.Response:
        account = self.venue.account(request.match_info["account"])
        _TOUCHED.get().add(account.account_id)
        body = await read_body(request, optional=True)
        only(body, {"reason"})
        cid = request.match_info["cid"]
        reason = body.get("reason") or "paper: rejected by the simulated venue"
        account.broker.reject_late(cid, str(reason))
        got = report(orders_of(account.broker)[cid])
        return web.json_response(report_json(got, orders_of(account.broker)))

    async def on_shutdown(self, app: web.Application) -> None:
        self.venue.persist(self.venue.accounts)


async def run_venue(venue: PaperVenue, sock: Any, *, stop: asyncio.Event,
                    ready: Callable[[int], None] | None = None) -> None:
    """Serve ``venue`` on an already bound socket until ``stop`` is set."""
    runner = web.AppRunner(venue.app(), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        if ready is not None:
            ready(int(sock.getsockname()[1]))
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await runner.cleanup()
        venue.persist(venue.accounts)
