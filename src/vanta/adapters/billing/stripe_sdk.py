"""Plumbing around the ``stripe`` SDK: one awaited call with Stripe's errors mapped onto the
billing errors, the request options, and an httpx client that does not warn on every POST."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import Any

import stripe

from vanta.application.ports.billing import (
    BillingAuthFailed,
    BillingRejected,
    BillingUnavailable,
)

__all__ = ["HTTPXClient", "call", "options"]


async def call(awaitable: Awaitable[Any]) -> dict[str, Any]:
    """Await one SDK call; the result as plain data, Stripe errors as billing errors."""
    try:
        return _plain(await awaitable)
    except (stripe.APIConnectionError, stripe.RateLimitError) as e:
        raise BillingUnavailable(_msg(e), code=_code(e, "unavailable"),
                                 status=e.http_status,
                                 retry_after=_retry_after(e)) from None
    except (stripe.AuthenticationError, stripe.PermissionError) as e:
        raise BillingAuthFailed(_msg(e), code=_code(e, "unauthorized"),
                                status=e.http_status) from None
    except stripe.StripeError as e:
        status = e.http_status
        if (status is not None and status >= 500) or isinstance(e, stripe.APIError):
            raise BillingUnavailable(_msg(e), code=_code(e, "server_error"),
                                     status=status, retry_after=_retry_after(e)) from None
        code = _code(e, "idempotency_error" if isinstance(e, stripe.IdempotencyError)
                     else "invalid_request")
        raise BillingRejected(_msg(e), code=code, status=status,
                              param=getattr(e, "param", None)) from None


class HTTPXClient(stripe.HTTPXClient):
    """stripe's httpx client, sending the encoded form as ``content=``: it passes it as
    ``data=``, which httpx deprecates for raw bytes (a DeprecationWarning on every POST)."""

    def _get_request_args_kwargs(self, *args: Any, **kwargs: Any) -> Any:
        call_args, call_kwargs = super()._get_request_args_kwargs(*args, **kwargs)
        if isinstance(call_kwargs.get("data"), str | bytes):
            call_kwargs["content"] = call_kwargs.pop("data")
        return call_args, call_kwargs


def options(idempotency_key: str | None) -> dict[str, str] | None:
    return {"idempotency_key": idempotency_key} if idempotency_key else None


def _plain(obj: Any) -> dict[str, Any]:
    if isinstance(obj, stripe.StripeObject):
        return obj.to_dict()
    if isinstance(obj, dict):
        return obj
    return json.loads(str(obj))


def _msg(e: stripe.StripeError) -> str:
    text = e.user_message or (e.args[0] if e.args else "") or type(e).__name__
    return f"Stripe: {text}"[:500]


def _code(e: stripe.StripeError, default: str) -> str:
    return e.code if isinstance(e.code, str) and e.code else default


def _retry_after(e: stripe.StripeError) -> float | None:
    value = (e.headers or {}).get("Retry-After") if e.headers else None
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
