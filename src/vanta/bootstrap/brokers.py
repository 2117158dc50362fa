"""Broker adapters for bridged followers: the composition root's
:class:`~vanta.application.ports.brokers.BrokerFactory`. Each adapter is imported on first use,
so a profile that never bridges a follower loads none of them (ccxt is an optional extra)."""

from __future__ import annotations

import zlib
from collections.abc import Callable
from decimal import Decimal

from vanta.application.bridged import BrokerRegistry
from vanta.application.ports.brokers import BrokerGateway


def default_factory(broker: str, creds: dict[str, str], follower_id: str) -> BrokerGateway:
    if broker == "paper":
        if "url" in creds:  # a separate venue process; the follower id is the account
            from vanta.adapters.brokers.paper_remote import RemotePaperBroker
            return RemotePaperBroker(creds["url"], follower_id, cash=creds.get("cash"))
        from vanta.adapters.brokers.paper import PaperBroker, PaperSettings
        return PaperBroker(PaperSettings(prices={}, cash=Decimal(creds.get("cash", "100000")),
                                         seed=zlib.crc32(follower_id.encode()) & 0xFFFF))
    if broker == "alpaca":
        from vanta.adapters.brokers.alpaca import AlpacaBroker
        kw = {"base_url": creds["base_url"]} if "base_url" in creds else {}
        return AlpacaBroker(creds["key_id"], creds["secret_key"], **kw)  # type: ignore[arg-type]
    if broker == "tradier":
        from vanta.adapters.brokers.tradier import TradierBroker
        kw = {"base_url": creds["base_url"]} if "base_url" in creds else {}
        return TradierBroker(creds["access_token"], creds["account_id"],
                             **kw)  # type: ignore[arg-type]
    try:
        from vanta.adapters.brokers.ccxt_venue import CcxtBroker
    except ImportError as e:  # ccxt is an optional extra
        raise RuntimeError("crypto venues need: pip install 'vanta-platform[crypto]'") from e
    if broker in ("binance", "kraken"):
        return _spot(broker, creds)
    return CcxtBroker.coinbase(creds["api_key"], creds["api_secret"],
                               api_url=creds.get("api_url"))


def broker_registry(secrets_get: Callable[[str], bytes]) -> BrokerRegistry:
    """One gateway per bridged follower, built by :func:`default_factory`."""
    return BrokerRegistry(secrets_get, default_factory)


def _spot(broker: str, creds: dict[str, str]) -> BrokerGateway:
    """Binance or Kraken spot: the pairs its fee model lists are where orders are looked up."""
    import ccxt.async_support as ccxt_async

    from vanta.adapters.brokers.ccxt_venue.spot import CcxtSpotBroker
    from vanta.domain.venues import DEFAULT_FEE_MODELS

    exchange = getattr(ccxt_async, broker)({"apiKey": creds["api_key"],
                                            "secret": creds["api_secret"], "timeout": 10_000,
                                            "enableRateLimit": True})
    return CcxtSpotBroker(exchange, symbols=sorted(DEFAULT_FEE_MODELS[broker].pairs))
