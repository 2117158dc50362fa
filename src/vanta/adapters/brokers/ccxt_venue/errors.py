"""ccxt's errors and logging, made ours: the exception map, the status policy and a logger
that redacts credentials."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from vanta.application.ports.brokers import (
    BrokerAuthFailed,
    BrokerError,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
)

_SECRET_HEADER_WORDS = ("auth", "key", "secret", "sign", "token", "passphrase", "cookie")


class _RedactHeaders(logging.Filter):
    """Blank out credential-bearing header values in ccxt's DEBUG request/response lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redact(a) for a in record.args)
        return True


def _redact(value: object) -> object:
    if isinstance(value, Mapping):
        return {k: ("<redacted>" if any(w in str(k).lower() for w in _SECRET_HEADER_WORDS)
                    else v) for k, v in value.items()}
    return value


LOGGER = logging.getLogger("vanta.adapters.brokers.ccxt")
LOGGER.addFilter(_RedactHeaders())


def install_status_policy(exchange: Any) -> None:
    """5xx and 429 are always transient, and a 404 on one order is OrderNotFound, whatever the
    body says (ccxt would otherwise map some JSON bodies to a generic ExchangeError)."""
    import ccxt.async_support as ccxt_async

    original = exchange.handle_errors

    def handle_errors(code: int, reason: str, url: str, method: str, headers: Any, body: Any,
                      response: Any, request_headers: Any, request_body: Any) -> Any:
        where = f"{exchange.id} {method} {url.split('?')[0]}"
        if code == 429:
            raise ccxt_async.RateLimitExceeded(f"{where} {code} {reason}")
        if code >= 500:
            raise ccxt_async.ExchangeNotAvailable(f"{where} {code} {reason}")
        if code == 404 and "/orders/historical/" in url and "/batch" not in url \
                and "/fills" not in url:
            raise ccxt_async.OrderNotFound(f"{where} {code} order not found")
        return original(code, reason, url, method, headers, body, response, request_headers,
                        request_body)

    exchange.handle_errors = handle_errors


def map_error(error: Exception, *, submitting: bool) -> BrokerError:
    """ccxt's exception tree onto ours."""
    import ccxt.async_support as ccxt_async

    message = str(error)[:300] or type(error).__name__
    if isinstance(error, BrokerError):
        return error
    if isinstance(error, ccxt_async.AuthenticationError):
        return BrokerAuthFailed(message, code=type(error).__name__)
    if isinstance(error, ccxt_async.OrderNotFound):
        return OrderNotFound(message, code="not_found")
    if isinstance(error, ccxt_async.NetworkError):
        return BrokerUnavailable(message, code=type(error).__name__)
    if isinstance(error, (ccxt_async.InsufficientFunds, ccxt_async.InvalidOrder,
                          ccxt_async.BadRequest, ccxt_async.BadSymbol)):
        return BrokerRejected(message, code=type(error).__name__)
    if isinstance(error, ccxt_async.ExchangeError) and submitting:
        return BrokerRejected(message, code=type(error).__name__)
    return BrokerError(message, code=type(error).__name__)
