"""One harness per broker implementation, so the contract suite can drive every venue alike.

A harness owns the gateway under test and the venue behind it (the paper simulator, or a fake
HTTP venue on 127.0.0.1), and offers the same controls for each: make the venue execute the next
part of an order, reject an accepted order, fail with an outage status, lose the answer to the
next placement, and count the orders it holds for a client order id.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.contract.fake_venues import FakeAlpaca, FakeCoinbase, FakeTradier, FakeVenue
from vanta.adapters.brokers.alpaca import AlpacaBroker
from vanta.adapters.brokers.ccxt_venue import CcxtBroker
from vanta.adapters.brokers.paper import PaperBroker, PaperSettings
from vanta.adapters.brokers.tradier import TradierBroker
from vanta.application.ports.brokers import BrokerGateway

VENUES = ("paper", "alpaca", "tradier", "ccxt-coinbase")
PARTS = 3  # every harness executes an order in three parts
CASH = Decimal(100_000)

ALPACA_KEY, ALPACA_SECRET = "PKFAKEKEYID0001", "alpaca-secret-Zq8sW1xY"
TRADIER_TOKEN, TRADIER_ACCOUNT = "tradier-token-Vb7mQ2pL", "VA12345678"
COINBASE_KEY_NAME = "organizations/0f0f0f0f-org/apiKeys/1a1a1a1a-key"
_COINBASE_KEY = ec.generate_private_key(ec.SECP256R1())
COINBASE_SECRET = _COINBASE_KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
    serialization.NoEncryption()).decode()
SECRETS = (ALPACA_SECRET, TRADIER_TOKEN, COINBASE_SECRET.splitlines()[1])


def closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Harness:
    name: str
    gateway: BrokerGateway
    symbol: str
    lot: Decimal  # a normal order size, divisible into PARTS parts
    price: Decimal  # the venue's mark price (constant during a test)
    limit: Decimal  # a marketable buy limit price
    _make_unreachable: Callable[[], BrokerGateway]
    _make_bad_credentials: Callable[[], BrokerGateway] | None
    fake: FakeVenue | None = None
    paper: PaperBroker | None = None
    _extra: list[BrokerGateway] = field(default_factory=list)
    _parts_done: dict[str, int] = field(default_factory=dict)

    @property
    def part(self) -> Decimal:
        return self.lot / PARTS

    async def advance(self, client_order_id: str) -> None:
        """The venue executes the next part of the order."""
        if self.paper is not None:
            self.paper.step()
            return
        assert self.fake is not None
        n = self._parts_done.get(client_order_id, 0)
        self._parts_done[client_order_id] = n + 1
        # executions at or below the buy limit, a little apart so the VWAP is not trivial
        price = self.price - Decimal(n) * Decimal("0.25")
        self.fake.execute(client_order_id, self.part, price)  # type: ignore[attr-defined]

    def reject_late(self, client_order_id: str) -> None:
        venue = self.paper or self.fake
        venue.reject_late(client_order_id)  # type: ignore[union-attr]

    def set_outage(self, status: int | None) -> None:
        if self.paper is not None:
            self.paper.set_outage(None if status is None else f"{status} injected")
        else:
            assert self.fake is not None
            self.fake.outage = status

    def lose_next_ack(self) -> None:
        venue = self.paper or self.fake
        venue.lose_next_ack()  # type: ignore[union-attr]

    def orders_with(self, client_order_id: str) -> int:
        if self.paper is not None:
            return self.paper.order_count(client_order_id)
        return self.fake.orders_with(client_order_id)  # type: ignore[union-attr]

    def unreachable(self) -> BrokerGateway:
        gw = self._make_unreachable()
        self._extra.append(gw)
        return gw

    def bad_credentials(self) -> BrokerGateway | None:
        if self._make_bad_credentials is None:
            return None
        gw = self._make_bad_credentials()
        self._extra.append(gw)
        return gw

    async def close(self) -> None:
        for gw in [self.gateway, *self._extra]:
            await gw.close()
        if self.fake is not None:
            await self.fake.stop()


def _paper(**overrides: object) -> PaperBroker:
    settings = dict(prices={"AAPL": Decimal("190.00")}, cash=CASH, seed=7,
                    volatility=Decimal(0), tick=None, fill_steps=(PARTS, PARTS))
    settings.update(overrides)
    return PaperBroker(PaperSettings(**settings))  # type: ignore[arg-type]


async def make_harness(name: str) -> Harness:
    builders: dict[str, Callable[[], Awaitable[Harness]]] = {
        "paper": _paper_harness, "alpaca": _alpaca_harness, "tradier": _tradier_harness,
        "ccxt-coinbase": _coinbase_harness,
    }
    return await builders[name]()


async def _paper_harness() -> Harness:
    def unreachable() -> PaperBroker:
        broker = _paper()
        broker.set_outage("connection refused")
        return broker

    paper = _paper()
    return Harness("paper", paper, "AAPL", Decimal(9), Decimal("190.00"), Decimal("191.00"),
                   unreachable, None, paper=paper)


async def _alpaca_harness() -> Harness:
    fake = FakeAlpaca(key_id=ALPACA_KEY, secret_key=ALPACA_SECRET, cash=CASH,
                      prices={"AAPL": Decimal("190.00")})
    url = await fake.start()
    return Harness(
        "alpaca", AlpacaBroker(ALPACA_KEY, ALPACA_SECRET, base_url=url, timeout=5),
        "AAPL", Decimal(9), Decimal("190.00"), Decimal("191.00"),
        lambda: AlpacaBroker(ALPACA_KEY, ALPACA_SECRET,
                             base_url=f"http://127.0.0.1:{closed_port()}", timeout=2),
        lambda: AlpacaBroker(ALPACA_KEY, "wrong-secret", base_url=url, timeout=5),
        fake=fake)


async def _tradier_harness() -> Harness:
    fake = FakeTradier(token=TRADIER_TOKEN, account_id=TRADIER_ACCOUNT, cash=CASH,
                       prices={"AAPL": Decimal("190.00")})
    url = await fake.start()
    return Harness(
        "tradier", TradierBroker(TRADIER_TOKEN, TRADIER_ACCOUNT, base_url=url, timeout=5,
                                 page_size=25),
        "AAPL", Decimal(9), Decimal("190.00"), Decimal("191.00"),
        lambda: TradierBroker(TRADIER_TOKEN, TRADIER_ACCOUNT,
                              base_url=f"http://127.0.0.1:{closed_port()}", timeout=2),
        lambda: TradierBroker("wrong-token", TRADIER_ACCOUNT, base_url=url, timeout=5),
        fake=fake)


def _fast_close(broker: CcxtBroker) -> CcxtBroker:
    broker.exchange.timeout_on_exit = 0  # ccxt waits 250 ms on close for TLS shutdown
    return broker


async def _coinbase_harness() -> Harness:
    fake = FakeCoinbase(key_name=COINBASE_KEY_NAME, public_key=_COINBASE_KEY.public_key(),
                        balances={"USD": CASH}, prices={"BTC-USD": Decimal("50000.00")})
    url = await fake.start()
    other_key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    return Harness(
        "ccxt-coinbase",
        _fast_close(CcxtBroker.coinbase(COINBASE_KEY_NAME, COINBASE_SECRET, api_url=url,
                                        timeout_ms=5000, rate_limit=False)),
        "BTC/USD", Decimal("0.03"), Decimal("50000.00"), Decimal("50010.00"),
        lambda: _fast_close(CcxtBroker.coinbase(
            COINBASE_KEY_NAME, COINBASE_SECRET, api_url=f"http://127.0.0.1:{closed_port()}",
            timeout_ms=2000, rate_limit=False)),
        lambda: _fast_close(CcxtBroker.coinbase(
            COINBASE_KEY_NAME, other_key, api_url=url, timeout_ms=5000, rate_limit=False)),
        fake=fake)


__all__ = ["CASH", "PARTS", "SECRETS", "VENUES", "Harness", "make_harness"]
