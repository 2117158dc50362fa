"""Broker adapters behind :class:`vanta.application.ports.brokers.BrokerGateway`.

``paper`` is the embedded default (no network); ``alpaca``, ``tradier`` and ``ccxt_venue`` only
translate our orders into each venue's API and report back. Import the one you need; the venue
SDKs are imported lazily by their own module.
"""
