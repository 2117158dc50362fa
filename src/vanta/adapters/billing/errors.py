"""Errors raised by the billing adapters.

The tree belongs to the application (``vanta.application.ports.billing``), so callers catch it
without importing an adapter; it is re-exported here for the adapters and their tests.
Messages never carry API keys, webhook secrets or signature values.
"""

from __future__ import annotations

from vanta.application.ports.billing import (
    REJECTION_REASONS,
    BillingAuthFailed,
    BillingError,
    BillingEventRejected,
    BillingRejected,
    BillingUnavailable,
)

__all__ = [
    "REJECTION_REASONS",
    "BillingAuthFailed",
    "BillingError",
    "BillingEventRejected",
    "BillingRejected",
    "BillingUnavailable",
]
