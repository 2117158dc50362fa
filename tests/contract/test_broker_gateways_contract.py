"""The broker registry contract (:class:`~vanta.application.ports.brokers.BrokerGateways`),
run on the fake (``tests/fakes/brokers.py``) and on the application's ``BrokerRegistry``
(credentials from a secret store, gateways from a factory; here a factory of paper accounts).

The gateways themselves are held to the broker contract in ``test_broker_contract.py``; the
fake's gateway *is* the paper broker, so this file also checks the deterministic settings the
fake gives it (whole fills at the set price, one part per step).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.fakes.brokers import FakeBrokerGateways, paper_gateway
from tests.fakes.secrets import FakeSecretStore
from tests.records import follower_record
from vanta.application.bridged import BrokerRegistry
from vanta.application.ports.brokers import (
    BrokerGateway,
    BrokerGateways,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    OrderStatus,
)
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.domain.orders import Side

SECRETS = FakeSecretStore()


def _follower(fid: str) -> FollowerRecord:
    ref = SECRETS.put(f"broker/{fid}/paper", json.dumps({"key": f"k-{fid}"}).encode())
    return follower_record(follower_id=fid, bridged_brokers={"broker": "paper", "ref": ref})


@pytest.fixture(params=["fake", "registry"])
async def gateways(request: pytest.FixtureRequest) -> AsyncIterator[BrokerGateways]:
    if request.param == "fake":
        registry: BrokerGateways = FakeBrokerGateways()
    else:
        def factory(broker: str, creds: dict[str, str], follower_id: str) -> BrokerGateway:
            assert (broker, creds) == ("paper", {"key": f"k-{follower_id}"})
            return paper_gateway()

        registry = BrokerRegistry(SECRETS.get, factory)
    yield registry
    await registry.close()


async def test_one_gateway_per_follower(gateways: BrokerGateways) -> None:
    a1 = gateways.for_follower(_follower("f1"))
    a2 = gateways.for_follower(_follower("f1"))
    b = gateways.for_follower(_follower("f2"))
    assert a1 is a2 and a1 is not b
    assert isinstance(a1, BrokerGateway) and isinstance(b, BrokerGateway)


async def test_accounts_are_separate(gateways: BrokerGateways) -> None:
    a = gateways.for_follower(_follower("f1"))
    b = gateways.for_follower(_follower("f2"))
    await a.submit(BrokerOrder("c-1", "AAPL", Side.BUY, Decimal(2)))
    assert (await a.order_report("c-1")).client_order_id == "c-1"
    with pytest.raises(LookupError):
        await b.order_report("c-1")


async def test_the_fake_paper_account_is_deterministic() -> None:
    gw = paper_gateway({"AAPL": Decimal("190.00")}, cash=Decimal(1000))
    ack = await gw.submit(BrokerOrder("c-1", "AAPL", Side.BUY, Decimal(3)))
    assert ack.status in (OrderStatus.NEW, OrderStatus.PENDING)
    assert await gw.submit(BrokerOrder("c-1", "AAPL", Side.BUY, Decimal(3))) == ack
    gw.step()
    report = await gw.order_report("c-1")
    assert (report.status, report.filled_qty, report.avg_price) == (
        OrderStatus.FILLED, Decimal(3), Decimal("190.00"))
    assert await gw.positions() == {"AAPL": Decimal(3)}
    assert await gw.account_nav() == Decimal(1000)
    with pytest.raises(BrokerRejected):  # 10 x 190 is more than the cash left
        await gw.submit(BrokerOrder("c-2", "AAPL", Side.BUY, Decimal(10)))
    gw.set_outage("503 injected")
    with pytest.raises(BrokerUnavailable):
        await gw.positions()
