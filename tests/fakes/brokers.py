"""Broker fakes: the paper broker is the scripted gateway.

:class:`vanta.adapters.brokers.paper.PaperBroker` is already an honest in-memory
:class:`~vanta.application.ports.brokers.BrokerGateway` and runs in the broker contract suite
(``tests/contract/test_broker_contract.py``) beside the real venue adapters. With the
settings of :func:`paper_gateway` (no clock ticks, no random walk, every order filled in one
part per :meth:`~PaperBroker.step`) it is fully scripted:

* acks: ``submit`` (idempotent by client order id; ``client_order_id_conflict`` on reuse);
* fills: ``step()`` fills each working order at the current price, ``set_price`` moves it;
* rejects: synchronous (unknown symbol, no buying power: :class:`BrokerRejected`) and late
  (``reject_late(cid)``: status ``rejected`` after the ack);
* outages: ``set_outage(reason)`` / ``set_outage(None)``, ``fail_next(n)``, and
  ``lose_next_ack(n)`` (the order is placed, the answer is lost as ``BrokerUnavailable``).

A second scripted fake would duplicate all of that. What is added here is
:class:`FakeBrokerGateways`, the :class:`~vanta.application.ports.brokers.BrokerGateways`
registry, which hands each follower its own paper account without secrets or a factory.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from vanta.adapters.brokers.paper import PaperBroker, PaperSettings
from vanta.application.ports.clock import Clock, utcnow
from vanta.application.ports.records_catalog import FollowerRecord

__all__ = ["FakeBrokerGateways", "PaperBroker", "paper_gateway"]

DEFAULT_PRICES: Mapping[str, Decimal] = {"AAPL": Decimal("190.00"), "MSFT": Decimal("410.00"),
                                         "BTC-USD": Decimal("60000.00")}


def paper_gateway(prices: Mapping[str, Decimal] | None = None, *,
                  cash: Decimal = Decimal(100_000), clock: Clock = utcnow,
                  **settings: Any) -> PaperBroker:
    """A deterministic paper account: prices stay put, each ``step()`` fills whole orders."""
    values: dict[str, Any] = {"prices": dict(prices or DEFAULT_PRICES), "cash": cash,
                              "tick": None, "volatility": Decimal(0), "fill_steps": (1, 1)}
    values.update(settings)
    return PaperBroker(PaperSettings(**values), clock=clock)


@dataclass
class FakeBrokerGateways:
    """One paper account per follower id, made on first use with ``paper_gateway(**kw)``.

    ``gateways`` may be filled beforehand to give a follower a prepared account."""

    settings: dict[str, Any] = field(default_factory=dict)
    gateways: dict[str, PaperBroker] = field(default_factory=dict)
    closed: bool = False

    def for_follower(self, follower: FollowerRecord) -> PaperBroker:
        fid = follower.follower_id
        gw = self.gateways.get(fid)
        if gw is None:
            gw = self.gateways[fid] = paper_gateway(**self.settings)
        return gw

    async def close(self) -> None:
        for gw in self.gateways.values():
            await gw.close()
        self.closed = True
