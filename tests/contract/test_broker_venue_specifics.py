"""What only one venue's adapter has to get right (the shared contract is elsewhere)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.contract.harness import (
    ALPACA_KEY,
    ALPACA_SECRET,
    COINBASE_KEY_NAME,
    COINBASE_SECRET,
    TRADIER_ACCOUNT,
    TRADIER_TOKEN,
    Harness,
    make_harness,
)
from vanta.adapters.brokers.alpaca import AlpacaBroker
from vanta.adapters.brokers.ccxt_venue import CcxtBroker
from vanta.adapters.brokers.tradier import TradierBroker
from vanta.application.ports.brokers import BrokerGateway, BrokerOrder, BrokerRejected
from vanta.domain.orders import Side, TimeInForce


@pytest.fixture
async def harnesses() -> AsyncIterator[dict[str, Harness]]:
    made: dict[str, Harness] = {}
    try:
        for name in ("alpaca", "tradier", "ccxt-coinbase"):
            made[name] = await make_harness(name)
        yield made
    finally:
        for h in made.values():
            await h.close()


def _order(h: Harness, qty: Decimal | None = None, tif: TimeInForce = TimeInForce.GTC,
           cid: str | None = None) -> BrokerOrder:
    return BrokerOrder(client_order_id=cid or str(uuid.uuid4()), symbol=h.symbol,
                       side=Side.BUY, qty=qty or h.lot, tif=tif, limit_price=h.limit)


def _fresh(h: Harness) -> BrokerGateway:
    """A second adapter instance (a restarted worker) on the same venue: no memory."""
    url = h.fake.url  # type: ignore[union-attr]
    if h.name == "alpaca":
        return AlpacaBroker(ALPACA_KEY, ALPACA_SECRET, base_url=url)
    if h.name == "tradier":
        return TradierBroker(TRADIER_TOKEN, TRADIER_ACCOUNT, base_url=url, page_size=25)
    broker = CcxtBroker.coinbase(COINBASE_KEY_NAME, COINBASE_SECRET, api_url=url,
                                 rate_limit=False)
    broker.exchange.timeout_on_exit = 0
    return broker


@pytest.mark.parametrize("name", ["alpaca", "tradier", "ccxt-coinbase"])
async def test_a_restarted_adapter_still_never_duplicates(
        harnesses: dict[str, Harness], name: str) -> None:
    h = harnesses[name]
    order = _order(h)
    first = await h.gateway.submit(order)
    fresh = _fresh(h)
    try:
        again = await fresh.submit(order)
        report = await fresh.order_report(order.client_order_id)
    finally:
        await fresh.close()
    assert again.broker_order_id == first.broker_order_id == report.broker_order_id
    assert h.orders_with(order.client_order_id) == 1


@pytest.mark.parametrize("name", ["alpaca", "ccxt-coinbase"])
async def test_venue_trade_ids_are_the_same_from_any_adapter_instance(
        harnesses: dict[str, Harness], name: str) -> None:
    h = harnesses[name]
    order = _order(h)
    await h.gateway.submit(order)
    await h.advance(order.client_order_id)
    await h.advance(order.client_order_id)
    fresh = _fresh(h)
    try:
        assert (await fresh.order_report(order.client_order_id)).fills == (
            await h.gateway.order_report(order.client_order_id)).fills
    finally:
        await fresh.close()


async def test_tradier_fills_are_instance_local_and_named_by_cumulative_qty(
        harnesses: dict[str, Harness]) -> None:
    h = harnesses["tradier"]
    order = _order(h)
    ack = await h.gateway.submit(order)
    await h.advance(order.client_order_id)
    seen = await h.gateway.order_report(order.client_order_id)
    await h.advance(order.client_order_id)
    later = await h.gateway.order_report(order.client_order_id)
    assert [f.trade_id for f in later.fills] == [f"{ack.broker_order_id}:3",
                                                 f"{ack.broker_order_id}:6"]
    assert later.fills[0] == seen.fills[0]
    assert [f.price for f in later.fills] == [h.price, h.price - Decimal("0.25")]
    fresh = _fresh(h)
    try:  # a new instance has not seen the first fill: it reports one merged fill
        merged = (await fresh.order_report(order.client_order_id)).fills
    finally:
        await fresh.close()
    assert [(f.trade_id, f.qty) for f in merged] == [(f"{ack.broker_order_id}:6", Decimal(6))]
    assert merged[0].price == later.avg_price


async def test_tradier_finds_a_tag_on_a_later_page(harnesses: dict[str, Harness]) -> None:
    h = harnesses["tradier"]
    target = _order(h, qty=Decimal(1))
    await h.gateway.submit(target)
    for _ in range(30):  # push the target beyond the first page of 25
        await h.gateway.submit(_order(h, qty=Decimal(1)))
    fresh = _fresh(h)
    try:
        await fresh.submit(target)
    finally:
        await fresh.close()
    assert h.orders_with(target.client_order_id) == 1
    assert any(r.query.get("page") == ["2"] for r in h.fake.requests)  # type: ignore[union-attr]


async def test_tradier_refuses_what_it_cannot_express_before_sending(
        harnesses: dict[str, Harness]) -> None:
    h = harnesses["tradier"]
    sent = len(h.fake.requests)  # type: ignore[union-attr]
    for order, code in [(_order(h, tif=TimeInForce.IOC), "unsupported_tif"),
                        (_order(h, qty=Decimal("1.5")), "fractional_qty"),
                        (_order(h, cid="has_underscore"), "invalid_tag")]:
        with pytest.raises(BrokerRejected) as info:
            await h.gateway.submit(order)
        assert info.value.code == code
    assert len(h.fake.requests) == sent  # type: ignore[union-attr]


async def test_tradier_asks_for_json_and_sends_a_form(harnesses: dict[str, Harness]) -> None:
    h = harnesses["tradier"]
    await h.gateway.submit(_order(h))
    posts = [r for r in h.fake.requests if r.method == "POST"]  # type: ignore[union-attr]
    assert posts[-1].headers["Accept"] == "application/json"
    assert posts[-1].headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert "class=equity" in posts[-1].body and "tag=" in posts[-1].body


async def test_alpaca_sends_exact_decimal_strings(harnesses: dict[str, Harness]) -> None:
    h = harnesses["alpaca"]
    order = BrokerOrder(client_order_id=str(uuid.uuid4()), symbol="AAPL", side=Side.BUY,
                        qty=Decimal("2.500"), tif=TimeInForce.DAY,
                        limit_price=Decimal("190.10"))
    await h.gateway.submit(order)
    post = next(r for r in h.fake.requests if r.method == "POST")  # type: ignore[union-attr]
    body = json.loads(post.body)
    assert (body["qty"], body["limit_price"]) == ("2.5", "190.1")
    assert body["client_order_id"] == order.client_order_id


async def test_coinbase_gets_our_client_order_id_and_a_base_size(
        harnesses: dict[str, Harness]) -> None:
    h = harnesses["ccxt-coinbase"]
    market = BrokerOrder(client_order_id=str(uuid.uuid4()), symbol="BTC-USD", side=Side.BUY,
                         qty=Decimal("0.01"))
    ack = await h.gateway.submit(market)
    post = next(r for r in h.fake.requests if r.method == "POST"  # type: ignore[union-attr]
                and r.path.endswith("/orders"))
    assert f'"client_order_id":"{market.client_order_id}"' in post.body.replace(" ", "")
    assert '"market_market_ioc":{"base_size":"0.01"}' in post.body.replace(" ", "")
    report = await h.gateway.order_report(market.client_order_id)
    assert report.broker_order_id == ack.broker_order_id
    assert report.symbol == "BTC/USD" and report.filled_qty == Decimal("0.01")


def test_ccxt_adapter_refuses_exchanges_without_a_dialect() -> None:
    import ccxt.async_support as ccxt_async

    with pytest.raises(ValueError, match="no dialect"):
        CcxtBroker(ccxt_async.kraken())


async def test_coinbase_duplicates_are_safe_whether_the_venue_returns_or_refuses_them(
        harnesses: dict[str, Harness]) -> None:
    h = harnesses["ccxt-coinbase"]
    h.fake.duplicates = "reject"  # type: ignore[union-attr]
    order = _order(h)
    first = await h.gateway.submit(order)
    fresh = _fresh(h)  # no memory of the first submit: it must look the id up
    try:
        again = await fresh.submit(order)
        with pytest.raises(BrokerRejected) as info:
            await fresh.submit(_order(h, qty=h.lot * 2, cid=order.client_order_id))
    finally:
        await fresh.close()
    assert again.broker_order_id == first.broker_order_id
    assert info.value.code == "client_order_id_conflict"
    assert h.orders_with(order.client_order_id) == 1
