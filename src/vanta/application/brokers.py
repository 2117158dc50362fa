"""The broker port, importable from its former home; it lives in
:mod:`vanta.application.ports.brokers`."""

from vanta.application.ports.brokers import (
    TERMINAL_ORDER_STATUSES,
    BrokerAck,
    BrokerAuthFailed,
    BrokerError,
    BrokerFactory,
    BrokerGateway,
    BrokerGateways,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
    Fill,
    OrderNotFound,
    OrderReport,
    OrderStatus,
)

__all__ = [
    "TERMINAL_ORDER_STATUSES",
    "BrokerAck",
    "BrokerAuthFailed",
    "BrokerError",
    "BrokerFactory",
    "BrokerGateway",
    "BrokerGateways",
    "BrokerOrder",
    "BrokerRejected",
    "BrokerUnavailable",
    "Fill",
    "OrderNotFound",
    "OrderReport",
    "OrderStatus",
]
