"""Old import path of :mod:`vanta.receiving` (the receiver-side verification helper).

Kept because earlier releases documented ``from vanta.webhooks import verify``; it re-exports
the same objects and warns. New code imports :mod:`vanta.receiving`.
"""

import warnings

from vanta.receiving import (
    DEFAULT_TOLERANCE_SECONDS,
    Reason,
    WebhookVerificationError,
    verify,
    verify_standard,
    verify_vanta,
)

warnings.warn("vanta.webhooks was renamed vanta.receiving; import from there",
              DeprecationWarning, stacklevel=2)

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "Reason",
    "WebhookVerificationError",
    "verify",
    "verify_standard",
    "verify_vanta",
]
