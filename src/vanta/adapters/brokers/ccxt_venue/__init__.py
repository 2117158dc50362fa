"""Crypto venues through the ``ccxt`` library: :class:`CcxtBroker` (Coinbase Advanced Trade).

Layout: :mod:`.broker` (the gateway; its documentation lists what is worth knowing),
:mod:`.coinbase` (Coinbase's request and answer dialect) and :mod:`.errors` (ccxt's errors
mapped onto ours, the status policy and the redacting logger).
"""

from vanta.adapters.brokers.ccxt_venue.broker import SUPPORTED_EXCHANGES, CcxtBroker

__all__ = ["SUPPORTED_EXCHANGES", "CcxtBroker"]
