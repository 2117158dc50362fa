"""Errors raised by the billing adapters.

BillingError                 base; ``code`` is stable and machine-readable
├── BillingEventRejected     an inbound webhook failed verification; ``reason`` is one of
│                            ``missing_signature``, ``bad_signature``, ``stale``, ``malformed``
├── BillingUnavailable       the provider could not be reached, timed out, rate-limited us or
│                            answered 5xx: retry later (``retry_after`` when the provider said)
├── BillingAuthFailed        the provider refused our credentials (401/403): a configuration fault
└── BillingRejected          the provider refused the request (4xx): retrying the same request
                             will not help; ``status`` and ``param`` say what it objected to

Messages never carry API keys, webhook secrets or signature values.
"""

from __future__ import annotations

from typing import Final

REJECTION_REASONS: Final = frozenset({"missing_signature", "bad_signature", "stale", "malformed"})


class BillingError(Exception):
    code: str = "billing_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BillingEventRejected(BillingError):
    """An inbound provider event was refused; answer the provider with HTTP 400."""

    code = "billing_event_rejected"

    def __init__(self, reason: str, message: str | None = None) -> None:
        if reason not in REJECTION_REASONS:
            raise ValueError(f"unknown rejection reason {reason!r}")
        super().__init__(message or reason)
        self.reason = reason

    def __repr__(self) -> str:
        return f"BillingEventRejected({self.reason!r})"


class BillingUnavailable(BillingError):
    code = "billing_unavailable"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.retry_after = retry_after


class BillingAuthFailed(BillingError):
    code = "billing_auth_failed"

    def __init__(self, message: str, *, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status


class BillingRejected(BillingError):
    code = "billing_rejected"

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None,
                 param: str | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.param = param
