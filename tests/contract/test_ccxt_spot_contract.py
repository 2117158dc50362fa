"""Binance and Kraken spot through the ccxt adapter, against ccxt-shaped fakes (no network):
each venue's client order id parameter and symbols, a retried submit that finds the order
already placed, fills and balances read from the raw answers, errors mapped, and the same
conversion-then-asset plan as the other venues ending the same way."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D

import ccxt.async_support as ccxt_async
import pytest

from tests.contract.fake_ccxt_spot import FakeSpotExchange
from tests.contract.test_uow_contract_support import Db, seed_children, seed_world
from tests.fakes.uow import MemoryDatabase
from vanta.adapters.brokers.ccxt_venue.dialects import Binance, Kraken
from vanta.adapters.brokers.ccxt_venue.spot import CcxtSpotBroker
from vanta.application.legs import plan_child_legs, poll_legs, run_ready_legs
from vanta.application.ports.brokers import (
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
    OrderStatus,
)
from vanta.domain.legs import LegState
from vanta.domain.orders import Side
from vanta.domain.routing import RouteRequest
from vanta.domain.venues import DEFAULT_FEE_MODELS

PRICE = D(40000)
LEG = "8a0e6c0e-2f7b-5d7e-9c43-0a1b2c3d4e5f.1"  # a leg id: 38 characters


def _venue(name: str, usd: str = "50000") -> tuple[FakeSpotExchange, CcxtSpotBroker]:
    fake = FakeSpotExchange(name, balances={"USD": D(usd)},
                            prices={"BTC-USDC": PRICE, "USDC-USD": D(1), "BTC-USD": PRICE})
    return fake, CcxtSpotBroker(fake, symbols=("BTC-USDC", "USDC-USD"))


@pytest.mark.parametrize(("name", "param", "cid"), [
    ("binance", "newClientOrderId", Binance.venue_client_id(LEG)),
    ("kraken", "cl_ord_id", Kraken.venue_client_id(LEG))])
async def test_each_venue_gets_its_own_client_id_and_symbol(name: str, param: str,
                                                            cid: str) -> None:
    fake, gw = _venue(name)
    ack = await gw.submit(BrokerOrder(LEG, "USDC-USD", Side.BUY, D("1000.5")))
    [(symbol, kind, side, amount, params)] = fake.created
    assert (symbol, kind, side, amount, params) == ("USDC/USD", "market", "buy", "1000.5",
                                                    {param: cid})
    assert len(cid) <= 36 and ack.status is OrderStatus.FILLED
    # a retried submit (the answer was lost) finds the order: no second one
    again = await gw.submit(BrokerOrder(LEG, "USDC-USD", Side.BUY, D("1000.5")))
    assert again.broker_order_id == ack.broker_order_id and len(fake.created) == 1
    report = await CcxtSpotBroker(fake, symbols=("USDC-USD",)).order_report(LEG)  # restarted
    assert (report.filled_qty, report.avg_price, report.status) == (
        D("1000.5"), D(1), OrderStatus.FILLED)
    assert [(f.qty, f.price) for f in report.fills] == [(D("1000.5"), D(1))]
    assert await gw.balances() == {"USD": D("48999.5"), "USDC": D("1000.5")}


@pytest.mark.parametrize("name", ["binance", "kraken"])
async def test_errors_map_onto_the_port(name: str) -> None:
    fake, gw = _venue(name, usd="10")
    with pytest.raises(BrokerRejected):
        await gw.submit(BrokerOrder(LEG, "BTC-USDC", Side.BUY, D("1")))
    fake.fail_next = ccxt_async.NetworkError("connection reset")
    with pytest.raises(BrokerUnavailable):
        await gw.submit(BrokerOrder(LEG, "BTC-USDC", Side.BUY, D("1")))
    with pytest.raises(OrderNotFound):
        await gw.order_report("never-placed")


@pytest.mark.parametrize("name", ["binance", "kraken"])
async def test_conversion_then_asset_leg_through_the_adapter(name: str) -> None:
    fake, gw = _venue(name)
    db = MemoryDatabase()
    store = Db("memory", db.uow)
    await seed_world(store)
    fo_id = (await seed_children(store))[0]
    models = {name: replace(DEFAULT_FEE_MODELS[name], taker_bps=D(0), spread_bps=D(0),
                            conversion_bps=D(0), min_order_usd=D(1),
                            pairs=frozenset({"BTC-USDC", "USDC-USD"}))}
    req = RouteRequest("BTC", "buy", D("0.5"), PRICE, D(50000), D(0), D(1000), 5000, (name,))
    await plan_child_legs(db.uow(), tenant_id="tnt_a", fo_id=fo_id, request=req,
                          models=models, lot_step=D("0.00000001"), min_qty=D("0.00000001"))
    for _ in range(2):  # conversion, then the asset leg it released
        await run_ready_legs(db.uow, gw, tenant_id="tnt_a", fo_id=fo_id)
        after = await poll_legs(db.uow, gw, tenant_id="tnt_a", fo_id=fo_id)
    assert [(g.state, g.filled) for g in after] == [(LegState.FILLED, D(21000)),
                                                    (LegState.FILLED, D("0.5"))]
    assert [c[0] for c in fake.created] == ["USDC/USD", "BTC/USDC"]
    assert await gw.positions() == {"BTC/USD": D("0.5"), "USDC/USD": D(1000)}
    assert await gw.account_nav() == D(50000)


@pytest.mark.parametrize("name", ["binance", "kraken"])
async def test_the_composition_root_builds_a_spot_gateway(name: str) -> None:
    from vanta.bootstrap.brokers import default_factory

    gw = default_factory(name, {"api_key": "k", "api_secret": "s"}, "follower-1")
    try:
        assert isinstance(gw, CcxtSpotBroker) and repr(gw) == \
            f"CcxtSpotBroker(exchange={name!r})"
    finally:
        await gw.close()
