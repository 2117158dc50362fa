"""Child legs placed through real broker adapters against the fake venues: a USD→USDC
conversion leg, then the BTC-USDC leg once it filled, on the paper venue and on Coinbase
through ccxt. The same plan ends the same way on both: the asset bought with USDC and the
stablecoin buffer left over."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal as D

import pytest

from tests.contract.fake_venues import FakeCoinbase
from tests.contract.harness import _COINBASE_KEY, COINBASE_KEY_NAME, COINBASE_SECRET
from tests.contract.test_uow_contract_support import Db, seed_children, seed_world
from tests.fakes.brokers import PaperBroker, paper_gateway
from tests.fakes.uow import MemoryDatabase
from vanta.adapters.brokers.ccxt_venue import CcxtBroker
from vanta.application.legs import plan_child_legs, poll_legs, run_ready_legs
from vanta.application.ports.brokers import BrokerGateway
from vanta.domain.legs import LegState
from vanta.domain.routing import LegKind, RouteRequest
from vanta.domain.venues import DEFAULT_FEE_MODELS

PRICE = D(40000)
MODELS = {"coinbase": replace(DEFAULT_FEE_MODELS["coinbase"], taker_bps=D(0), spread_bps=D(0),
                              conversion_bps=D(0), pairs=frozenset({"BTC-USDC", "USDC-USD"}))}


@pytest.fixture(params=["paper", "ccxt-coinbase"])
async def venue(request: pytest.FixtureRequest) -> AsyncIterator[BrokerGateway]:
    if request.param == "paper":
        yield paper_gateway({"BTC-USDC": PRICE}, cash=D(50000))
        return
    fake = FakeCoinbase(key_name=COINBASE_KEY_NAME, public_key=_COINBASE_KEY.public_key(),
                        balances={"USD": D(50000)},
                        prices={"BTC-USDC": PRICE, "USDC-USD": D(1)})
    url = await fake.start()
    broker = CcxtBroker.coinbase(COINBASE_KEY_NAME, COINBASE_SECRET, api_url=url,
                                 timeout_ms=5000, rate_limit=False)
    broker.exchange.timeout_on_exit = 0
    try:
        yield broker
    finally:
        await broker.close()
        await fake.stop()


def _advance(gw: BrokerGateway) -> None:
    if isinstance(gw, PaperBroker):  # Coinbase fills market orders at once
        gw.step()


async def test_conversion_then_asset_leg_through_the_adapter(venue: BrokerGateway) -> None:
    db = MemoryDatabase()
    store = Db("memory", db.uow)
    await seed_world(store)
    fo_id = (await seed_children(store))[0]
    req = RouteRequest("BTC", "buy", D("0.5"), PRICE, D(50000), D(0), D(1000), 5000,
                       ("coinbase",))
    _, legs = await plan_child_legs(db.uow(), tenant_id="tnt_a", fo_id=fo_id, request=req,
                                    models=MODELS, lot_step=D("0.00000001"),
                                    min_qty=D("0.00000001"))
    assert [(g.kind, g.pair, g.amount) for g in legs] == [
        (LegKind.CONVERT, "USDC-USD", D(21000)), (LegKind.TRADE, "BTC-USDC", D("0.5"))]
    for _ in range(2):  # conversion, then the asset leg it released
        await run_ready_legs(db.uow, venue, tenant_id="tnt_a", fo_id=fo_id)
        _advance(venue)
        after = await poll_legs(db.uow, venue, tenant_id="tnt_a", fo_id=fo_id)
    assert [(g.state, g.filled) for g in after] == [(LegState.FILLED, D(21000)),
                                                    (LegState.FILLED, D("0.5"))]
    held = {k.replace("/", "-"): v for k, v in (await venue.positions()).items()}
    assert held.get("USDC-USD") == D(1000)  # the buffer stays in USDC
    assert held.get("BTC-USDC", held.get("BTC-USD")) == D("0.5")
