"""The broker contract: one set of tests, run against every BrokerGateway implementation.

paper: the in-process simulator. alpaca, tradier, ccxt-coinbase: the real adapters against
stateful fakes of each venue's documented API on 127.0.0.1 (tests/contract/fake_venues.py).
No test touches the network beyond the loopback interface.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.contract.harness import CASH, PARTS, SECRETS, VENUES, Harness, make_harness
from vanta.application.ports.brokers import (
    BrokerAck,
    BrokerAuthFailed,
    BrokerGateway,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)
from vanta.domain.orders import Side, TimeInForce


@pytest.fixture(params=VENUES)
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    harness = await make_harness(request.param)
    try:
        yield harness
    finally:
        await harness.close()


def _cid() -> str:
    return str(uuid.uuid4())


def _buy(v: Harness, cid: str | None = None, *, qty: Decimal | None = None,
         limit: bool = True) -> BrokerOrder:
    return BrokerOrder(client_order_id=cid or _cid(), symbol=v.symbol, side=Side.BUY,
                       qty=qty if qty is not None else v.lot, tif=TimeInForce.GTC,
                       limit_price=v.limit if limit else None)


def _assert_fills_consistent(report: OrderReport) -> None:
    ids = [f.trade_id for f in report.fills]
    assert len(ids) == len(set(ids)), "trade ids repeat within one report"
    assert all(ids), "every fill carries a trade id"
    assert sum((f.qty for f in report.fills), Decimal(0)) == report.filled_qty
    if report.filled_qty > 0:
        notional = sum((f.qty * f.price for f in report.fills), Decimal(0))
        assert report.avg_price is not None
        assert abs(report.avg_price - notional / report.filled_qty) < Decimal("1e-6")
    for f in report.fills:
        assert isinstance(f.qty, Decimal) and isinstance(f.price, Decimal)
        assert f.ts.tzinfo is not None


async def _fill_completely(v: Harness, order: BrokerOrder) -> OrderReport:
    report = await v.gateway.order_report(order.client_order_id)
    for _ in range(PARTS):
        if report.status is OrderStatus.FILLED:
            break
        await v.advance(order.client_order_id)
        report = await v.gateway.order_report(order.client_order_id)
    assert report.status is OrderStatus.FILLED
    return report


async def test_gateway_satisfies_the_protocol(venue: Harness) -> None:
    assert isinstance(venue.gateway, BrokerGateway)


async def test_submit_returns_an_ack_and_the_order_is_working(venue: Harness) -> None:
    order = _buy(venue)
    ack = await venue.gateway.submit(order)
    assert isinstance(ack, BrokerAck)
    assert ack.client_order_id == order.client_order_id
    assert ack.broker_order_id
    assert ack.status in (OrderStatus.PENDING, OrderStatus.NEW)
    report = await venue.gateway.order_report(order.client_order_id)
    assert report.broker_order_id == ack.broker_order_id
    assert report.status in (OrderStatus.PENDING, OrderStatus.NEW)
    assert (report.qty, report.filled_qty, report.fills) == (venue.lot, 0, ())
    assert report.side is Side.BUY and not report.is_terminal
    assert venue.orders_with(order.client_order_id) == 1


async def test_market_order_is_accepted(venue: Harness) -> None:
    order = _buy(venue, limit=False, qty=venue.part)
    ack = await venue.gateway.submit(order)
    assert ack.client_order_id == order.client_order_id
    assert venue.orders_with(order.client_order_id) == 1


async def test_duplicate_submit_returns_the_same_order_and_the_venue_holds_one(
        venue: Harness) -> None:
    order = _buy(venue)
    first = await venue.gateway.submit(order)
    second = await venue.gateway.submit(order)
    assert second.broker_order_id == first.broker_order_id
    assert second.client_order_id == order.client_order_id
    assert venue.orders_with(order.client_order_id) == 1


async def test_duplicate_submit_after_fills_still_returns_the_existing_order(
        venue: Harness) -> None:
    order = _buy(venue)
    first = await venue.gateway.submit(order)
    await venue.advance(order.client_order_id)
    again = await venue.gateway.submit(order)
    assert again.broker_order_id == first.broker_order_id
    assert again.status is OrderStatus.PARTIALLY_FILLED
    assert venue.orders_with(order.client_order_id) == 1


async def test_reusing_a_client_order_id_for_another_order_is_a_conflict(
        venue: Harness) -> None:
    cid = _cid()
    await venue.gateway.submit(_buy(venue, cid))
    with pytest.raises(BrokerRejected) as info:
        await venue.gateway.submit(_buy(venue, cid, qty=venue.lot * 2))
    assert info.value.code == "client_order_id_conflict"
    assert venue.orders_with(cid) == 1


async def test_a_lost_answer_is_retryable_and_the_retry_creates_no_second_order(
        venue: Harness) -> None:
    order = _buy(venue)
    venue.lose_next_ack()
    with pytest.raises(BrokerUnavailable):
        await venue.gateway.submit(order)
    assert venue.orders_with(order.client_order_id) == 1  # the venue did act
    ack = await venue.gateway.submit(order)
    assert venue.orders_with(order.client_order_id) == 1
    report = await venue.gateway.order_report(order.client_order_id)
    assert report.broker_order_id == ack.broker_order_id


async def test_partial_fills_are_reported_with_stable_trade_ids(venue: Harness) -> None:
    order = _buy(venue)
    await venue.gateway.submit(order)
    await venue.advance(order.client_order_id)
    first = await venue.gateway.order_report(order.client_order_id)
    assert first.status is OrderStatus.PARTIALLY_FILLED
    assert 0 < first.filled_qty < venue.lot
    assert len(first.fills) == 1
    _assert_fills_consistent(first)
    assert (await venue.gateway.order_report(order.client_order_id)).fills == first.fills

    await venue.advance(order.client_order_id)
    second = await venue.gateway.order_report(order.client_order_id)
    assert second.status is OrderStatus.PARTIALLY_FILLED
    assert second.filled_qty > first.filled_qty
    _assert_fills_consistent(second)
    assert {f.trade_id for f in first.fills} <= {f.trade_id for f in second.fills}

    await venue.advance(order.client_order_id)
    final = await venue.gateway.order_report(order.client_order_id)
    assert final.status is OrderStatus.FILLED and final.is_terminal
    assert final.filled_qty == venue.lot and final.remaining_qty == 0
    assert len(final.fills) == PARTS
    _assert_fills_consistent(final)


async def test_fills_merged_across_reports_by_trade_id_never_double_count(
        venue: Harness) -> None:
    order = _buy(venue)
    await venue.gateway.submit(order)
    seen: dict[str, Decimal] = {}
    for _ in range(PARTS):
        await venue.advance(order.client_order_id)
        for _ in range(2):
            report = await venue.gateway.order_report(order.client_order_id)
            for f in report.fills:
                assert seen.setdefault(f.trade_id, f.qty) == f.qty
    assert sum(seen.values(), Decimal(0)) == venue.lot


async def test_positions_and_nav_follow_the_fills(venue: Harness) -> None:
    assert await venue.gateway.positions() == {}
    assert await venue.gateway.account_nav() == CASH
    order = _buy(venue)
    await venue.gateway.submit(order)
    await venue.advance(order.client_order_id)
    partial = await venue.gateway.order_report(order.client_order_id)
    assert (await venue.gateway.positions()) == {venue.symbol: partial.filled_qty}
    report = await _fill_completely(venue, order)
    positions = await venue.gateway.positions()
    assert positions == {venue.symbol: venue.lot}
    assert all(isinstance(q, Decimal) for q in positions.values())
    spent = sum((f.qty * f.price for f in report.fills), Decimal(0))
    nav = await venue.gateway.account_nav()
    assert isinstance(nav, Decimal)
    assert nav == CASH - spent + venue.lot * venue.price


async def test_cash_balances_follow_the_fills(venue: Harness) -> None:
    before = await venue.gateway.balances()
    assert before == {"USD": CASH}
    assert all(isinstance(v, Decimal) for v in before.values())
    order = _buy(venue)
    await venue.gateway.submit(order)
    report = await _fill_completely(venue, order)
    spent = sum((f.qty * f.price for f in report.fills), Decimal(0))
    assert await venue.gateway.balances() == {"USD": CASH - spent}


async def test_a_sell_reduces_the_position(venue: Harness) -> None:
    buy = _buy(venue)
    await venue.gateway.submit(buy)
    await _fill_completely(venue, buy)
    sell = BrokerOrder(client_order_id=_cid(), symbol=venue.symbol, side=Side.SELL,
                       qty=venue.lot, tif=TimeInForce.GTC, limit_price=venue.price - 5)
    await venue.gateway.submit(sell)
    await venue.advance(sell.client_order_id)
    report = await venue.gateway.order_report(sell.client_order_id)
    assert report.side is Side.SELL and report.filled_qty > 0
    assert await venue.gateway.positions() == {venue.symbol: venue.lot - report.filled_qty}


async def test_an_order_the_venue_refuses_raises_broker_rejected(venue: Harness) -> None:
    order = _buy(venue, qty=venue.lot * 1_000_000)  # far beyond the account's buying power
    with pytest.raises(BrokerRejected) as info:
        await venue.gateway.submit(order)
    assert not isinstance(info.value, BrokerUnavailable)
    assert venue.orders_with(order.client_order_id) == 0
    with pytest.raises(OrderNotFound):
        await venue.gateway.order_report(order.client_order_id)


async def test_selling_what_is_not_held_is_rejected(venue: Harness) -> None:
    order = BrokerOrder(client_order_id=_cid(), symbol=venue.symbol, side=Side.SELL,
                        qty=venue.lot, tif=TimeInForce.GTC, limit_price=venue.price)
    with pytest.raises(BrokerRejected):
        await venue.gateway.submit(order)


async def test_a_rejection_after_acceptance_is_reported_as_rejected(venue: Harness) -> None:
    order = _buy(venue)
    await venue.gateway.submit(order)
    venue.reject_late(order.client_order_id)
    report = await venue.gateway.order_report(order.client_order_id)
    assert report.status is OrderStatus.REJECTED and report.is_terminal
    assert report.reason


@pytest.mark.parametrize("status", [503, 429, 500])
async def test_outages_raise_broker_unavailable_and_leave_nothing_behind(
        venue: Harness, status: int) -> None:
    order = _buy(venue)
    await venue.gateway.positions()  # warm up (markets, connections) before the outage
    venue.set_outage(status)
    with pytest.raises(BrokerUnavailable) as info:
        await venue.gateway.submit(order)
    assert not isinstance(info.value, BrokerAuthFailed)
    for call in (venue.gateway.positions(), venue.gateway.account_nav(),
                 venue.gateway.balances(),
                 venue.gateway.order_report(order.client_order_id),
                 venue.gateway.cancel(order.client_order_id)):
        with pytest.raises(BrokerUnavailable):
            await call
    venue.set_outage(None)
    assert venue.orders_with(order.client_order_id) == 0
    await venue.gateway.submit(order)
    assert venue.orders_with(order.client_order_id) == 1


async def test_connection_refused_raises_broker_unavailable(venue: Harness) -> None:
    gateway = venue.unreachable()
    with pytest.raises(BrokerUnavailable):
        await gateway.submit(_buy(venue))
    with pytest.raises(BrokerUnavailable):
        await gateway.account_nav()
    with pytest.raises(BrokerUnavailable):
        await gateway.order_report(_cid())


async def test_refused_credentials_raise_auth_failed(venue: Harness) -> None:
    gateway = venue.bad_credentials()
    if gateway is None:
        pytest.skip(f"{venue.name} has no credentials")
    with pytest.raises(BrokerAuthFailed):
        await gateway.account_nav()
    with pytest.raises(BrokerAuthFailed):
        await gateway.submit(_buy(venue))


async def test_cancel_stops_the_order_and_keeps_its_partial_fill(venue: Harness) -> None:
    order = _buy(venue)
    await venue.gateway.submit(order)
    await venue.advance(order.client_order_id)
    await venue.gateway.cancel(order.client_order_id)
    report = await venue.gateway.order_report(order.client_order_id)
    assert report.status is OrderStatus.CANCELED and report.is_terminal
    assert report.filled_qty == venue.part
    _assert_fills_consistent(report)
    await venue.gateway.cancel(order.client_order_id)  # a second cancel is a no-op
    assert (await venue.gateway.order_report(order.client_order_id)).status is (
        OrderStatus.CANCELED)


async def test_cancel_of_a_filled_order_is_a_no_op(venue: Harness) -> None:
    order = _buy(venue)
    await venue.gateway.submit(order)
    await _fill_completely(venue, order)
    await venue.gateway.cancel(order.client_order_id)
    assert (await venue.gateway.order_report(order.client_order_id)).status is (
        OrderStatus.FILLED)


async def test_unknown_client_order_ids_raise_order_not_found(venue: Harness) -> None:
    await venue.gateway.submit(_buy(venue))
    with pytest.raises(OrderNotFound):
        await venue.gateway.order_report(_cid())
    with pytest.raises(OrderNotFound):
        await venue.gateway.cancel(_cid())


async def test_credentials_never_reach_logs_reprs_or_errors(
        venue: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = [repr(venue.gateway)]
    order = _buy(venue)
    await venue.gateway.submit(order)
    await venue.advance(order.client_order_id)
    await venue.gateway.order_report(order.client_order_id)
    await venue.gateway.positions()
    await venue.gateway.account_nav()
    for call in (venue.gateway.submit(_buy(venue, qty=venue.lot * 1_000_000)),
                 venue.gateway.order_report(_cid())):
        try:
            await call
        except Exception as e:
            messages.append(str(e))
    bad = venue.bad_credentials()
    if bad is not None:
        messages.append(repr(bad))
        try:
            await bad.account_nav()
        except Exception as e:
            messages.append(str(e))
    text = caplog.text + "\n".join(messages)
    for secret in SECRETS:
        assert secret not in text
    if venue.fake is not None:
        authorizations = [r.headers.get("Authorization", "") for r in venue.fake.requests]
        for header in authorizations:
            if header.startswith("Bearer ") and len(header) > 20:
                assert header.removeprefix("Bearer ") not in text
