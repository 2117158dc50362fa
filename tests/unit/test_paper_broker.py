"""Properties of the paper broker (the embedded simulator)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vanta.adapters.brokers.paper import PaperBroker, PaperSettings
from vanta.application.ports.brokers import (
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderStatus,
)
from vanta.domain.orders import Side, TimeInForce

PRICES = {"AAPL": Decimal("190.00"), "MSFT": Decimal("410.50"), "BTC-USD": Decimal("50000")}
START = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)


class ManualClock:
    def __init__(self, now: datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def _broker(seed: int = 1, clock: Callable[[], datetime] | None = None,
            **overrides: object) -> PaperBroker:
    values: dict[str, object] = dict(prices=PRICES, cash=Decimal(1_000_000), seed=seed,
                                     tick=None)
    values.update(overrides)
    return PaperBroker(PaperSettings(**values),  # type: ignore[arg-type]
                       clock=clock or ManualClock())


def _order(n: int, symbol: str = "AAPL", side: Side = Side.BUY, qty: str = "10",
           limit: str | None = None, tif: TimeInForce = TimeInForce.DAY) -> BrokerOrder:
    return BrokerOrder(client_order_id=f"child-{n}", symbol=symbol, side=side,
                       qty=Decimal(qty), tif=tif,
                       limit_price=Decimal(limit) if limit is not None else None)


async def _scenario(broker: PaperBroker) -> list[object]:
    """A fixed script; returns everything observable."""
    seen: list[object] = []
    for n, (symbol, qty) in enumerate([("AAPL", "25"), ("MSFT", "7"), ("BTC-USD", "0.35")]):
        seen.append(await broker.submit(_order(n, symbol, qty=qty)))
        broker.step(2)
    broker.step(5)
    seen.append(await broker.submit(_order(9, "AAPL", Side.SELL, qty="10")))
    broker.step(4)
    for n in (0, 1, 2, 9):
        seen.append(await broker.order_report(f"child-{n}"))
    seen.append(await broker.positions())
    seen.append(await broker.account_nav())
    seen.append({s: broker.price(s) for s in PRICES})
    return seen


async def test_same_seed_same_everything() -> None:
    assert await _scenario(_broker(seed=42)) == await _scenario(_broker(seed=42))


async def test_another_seed_walks_differently() -> None:
    a, b = await _scenario(_broker(seed=1)), await _scenario(_broker(seed=2))
    assert a[-1] != b[-1]  # prices
    assert a != b


async def test_position_is_the_signed_sum_of_fills_and_nav_is_cash_plus_marks() -> None:
    broker = _broker(seed=3, volatility=Decimal("0.01"), fill_steps=(1, 4),
                     positions={"MSFT": Decimal(5)})
    orders = [_order(0, "AAPL", qty="30"), _order(1, "MSFT", qty="12"),
              _order(2, "BTC-USD", qty="1.25"), _order(3, "MSFT", Side.SELL, qty="9")]
    for o in orders:
        await broker.submit(o)
        broker.step()
    broker.step(10)
    expected: dict[str, Decimal] = {"MSFT": Decimal(5)}
    cash = Decimal(1_000_000)
    trade_ids: list[str] = []
    for o in orders:
        report = await broker.order_report(o.client_order_id)
        assert report.status is OrderStatus.FILLED
        sign = 1 if o.side is Side.BUY else -1
        for f in report.fills:
            expected[o.symbol] = expected.get(o.symbol, Decimal(0)) + sign * f.qty
            cash -= sign * f.qty * f.price
            trade_ids.append(f.trade_id)
        assert sum(f.qty for f in report.fills) == report.filled_qty == o.qty
    assert await broker.positions() == {s: q for s, q in expected.items() if q}
    assert broker.cash == cash
    marks = sum((q * broker.price(s) for s, q in expected.items()), Decimal(0))
    assert await broker.account_nav() == cash + marks
    assert len(trade_ids) == len(set(trade_ids))


async def test_orders_fill_in_several_parts_of_lot_steps() -> None:
    broker = _broker(seed=5, fill_steps=(3, 3))
    await broker.submit(_order(0, qty="10"))
    sizes = []
    for _ in range(3):
        broker.step()
        report = await broker.order_report("child-0")
        sizes.append(report.fills[-1].qty)
    assert report.status is OrderStatus.FILLED
    assert len(sizes) == 3 and sum(sizes) == 10
    assert all(s == s.to_integral_value() and s > 0 for s in sizes)


async def test_the_clock_drives_ticks_when_a_tick_is_set() -> None:
    clock = ManualClock()
    broker = _broker(clock=clock, tick=timedelta(seconds=1), fill_steps=(2, 2),
                     volatility=Decimal(0))
    await broker.submit(_order(0))
    assert (await broker.order_report("child-0")).filled_qty == 0
    clock.advance(timedelta(milliseconds=1500))
    report = await broker.order_report("child-0")
    assert report.status is OrderStatus.PARTIALLY_FILLED
    assert report.fills[0].ts == START + timedelta(seconds=1)
    clock.advance(timedelta(seconds=1))
    assert (await broker.order_report("child-0")).status is OrderStatus.FILLED


async def test_duplicate_client_order_id_returns_the_first_order() -> None:
    broker = _broker()
    first = await broker.submit(_order(0))
    again = await broker.submit(_order(0))
    assert again.broker_order_id == first.broker_order_id
    assert broker.order_count() == 1
    with pytest.raises(BrokerRejected) as info:
        await broker.submit(_order(0, qty="11"))
    assert info.value.code == "client_order_id_conflict"


async def test_limit_orders_wait_for_their_price() -> None:
    broker = _broker(volatility=Decimal(0))
    await broker.submit(_order(0, limit="180.00"))
    broker.step(5)
    assert (await broker.order_report("child-0")).status is OrderStatus.NEW
    broker.set_price("AAPL", Decimal("179.50"))
    broker.step(5)
    report = await broker.order_report("child-0")
    assert report.status is OrderStatus.FILLED
    assert all(f.price == Decimal("179.50") for f in report.fills)


async def test_ioc_and_fok() -> None:
    broker = _broker(volatility=Decimal(0), fill_steps=(3, 3))
    await broker.submit(_order(0, qty="9", tif=TimeInForce.IOC))
    await broker.submit(_order(1, qty="9", tif=TimeInForce.FOK))
    await broker.submit(_order(2, qty="9", tif=TimeInForce.FOK, limit="100"))
    broker.step()
    ioc, fok, fok_away = [await broker.order_report(f"child-{n}") for n in range(3)]
    assert ioc.status is OrderStatus.CANCELED and 0 < ioc.filled_qty < 9
    assert fok.status is OrderStatus.FILLED and len(fok.fills) == 1
    assert fok_away.status is OrderStatus.CANCELED and fok_away.filled_qty == 0


async def test_synchronous_refusals_leave_nothing_behind() -> None:
    broker = _broker(cash=Decimal(1000))
    with pytest.raises(BrokerRejected, match="buying power"):
        await broker.submit(_order(0, qty="10"))
    with pytest.raises(BrokerRejected, match="unknown symbol"):
        await broker.submit(_order(1, symbol="NOPE"))
    with pytest.raises(BrokerRejected, match="insufficient qty"):
        await broker.submit(_order(2, side=Side.SELL))
    assert broker.order_count() == 0 and broker.cash == 1000


async def test_open_buys_reserve_buying_power() -> None:
    broker = _broker(cash=Decimal(2000), volatility=Decimal(0))
    await broker.submit(_order(0, qty="10", limit="150"))  # reserves 1500, not marketable
    with pytest.raises(BrokerRejected):
        await broker.submit(_order(1, qty="3"))  # 570 > 500 left


async def test_reject_probability_rejects_accepted_orders_on_their_first_tick() -> None:
    broker = _broker(reject_probability=Decimal(1))
    ack = await broker.submit(_order(0))
    assert ack.status is OrderStatus.NEW
    broker.step()
    report = await broker.order_report("child-0")
    assert report.status is OrderStatus.REJECTED and report.reason


async def test_injected_outages_raise_unavailable_and_change_nothing() -> None:
    broker = _broker()
    broker.fail_next(2)
    for _ in range(2):
        with pytest.raises(BrokerUnavailable):
            await broker.submit(_order(0))
    assert broker.order_count() == 0
    broker.set_outage()
    with pytest.raises(BrokerUnavailable):
        await broker.account_nav()
    broker.set_outage(None)
    broker.lose_next_ack()
    with pytest.raises(BrokerUnavailable):
        await broker.submit(_order(0))
    assert broker.order_count("child-0") == 1
    assert (await broker.submit(_order(0))).client_order_id == "child-0"
    assert broker.order_count() == 1


async def test_latency_is_awaited(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    broker = _broker(latency=timedelta(milliseconds=40))
    await broker.submit(_order(0))
    await broker.positions()
    assert slept == [0.04, 0.04]


async def test_fees_are_charged_on_fills() -> None:
    broker = _broker(volatility=Decimal(0), fee_rate=Decimal("0.001"), fill_steps=(1, 1))
    await broker.submit(_order(0, qty="10"))
    broker.step()
    assert broker.cash == Decimal(1_000_000) - Decimal("1900.00") - Decimal("1.90")


def test_settings_refuse_floats_and_nonsense() -> None:
    with pytest.raises(ValueError):
        PaperSettings(prices={"AAPL": 190.0})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        PaperSettings(prices=PRICES, cash=1000.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        PaperSettings(prices=PRICES, fill_steps=(3, 1))
    with pytest.raises(ValueError):
        PaperSettings(prices=PRICES, reject_probability=Decimal(2))
    with pytest.raises(TypeError):
        BrokerOrder("x", "AAPL", Side.BUY, 1.5)  # type: ignore[arg-type]


_actions = st.lists(
    st.tuples(st.sampled_from(["AAPL", "MSFT", "BTC-USD"]), st.sampled_from([Side.BUY,
              Side.SELL]), st.integers(1, 40), st.integers(0, 3),
              st.sampled_from([TimeInForce.DAY, TimeInForce.GTC, TimeInForce.IOC])),
    min_size=1, max_size=25)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), actions=_actions)
def test_accounting_invariants_hold_for_any_sequence(
        seed: int, actions: list[tuple[str, Side, int, int, TimeInForce]]) -> None:
    async def run() -> None:
        broker = _broker(seed=seed, volatility=Decimal("0.02"), fill_steps=(1, 4),
                         cash=Decimal(50_000), positions={"AAPL": Decimal(20)},
                         fee_rate=Decimal("0.0005"), reject_probability=Decimal("0.1"))
        submitted: list[BrokerOrder] = []
        for n, (symbol, side, qty, steps, tif) in enumerate(actions):
            order = _order(n, symbol, side, qty=str(qty), tif=tif)
            try:
                await broker.submit(order)
                submitted.append(order)
            except BrokerRejected:
                pass
            broker.step(steps)
        held: dict[str, Decimal] = {"AAPL": Decimal(20)}
        cash = Decimal(50_000)
        ids: set[str] = set()
        for order in submitted:
            report = await broker.order_report(order.client_order_id)
            assert report.filled_qty == sum((f.qty for f in report.fills), Decimal(0))
            assert report.filled_qty <= order.qty
            sign = 1 if order.side is Side.BUY else -1
            for f in report.fills:
                assert f.trade_id not in ids
                ids.add(f.trade_id)
                held[order.symbol] = held.get(order.symbol, Decimal(0)) + sign * f.qty
                cash -= sign * f.qty * f.price + (f.qty * f.price * Decimal("0.0005")).quantize(
                    Decimal("0.01"))
        positions = await broker.positions()
        assert positions == {s: q for s, q in held.items() if q != 0}
        assert all(q > 0 for q in positions.values())  # never short without allow_short
        assert broker.cash == cash
        marks = sum((q * broker.price(s) for s, q in positions.items()), Decimal(0))
        assert await broker.account_nav() == cash + marks

    asyncio.run(run())
