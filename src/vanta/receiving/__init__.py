"""Verify signed Vanta webhook deliveries on the receiving side.

Example::

    from vanta.receiving import WebhookVerificationError, verify

    try:
        verify(request.headers, raw_body, "whsec_...")
    except WebhookVerificationError as exc:
        return 400, exc.reason
"""

from vanta.receiving.verify import (
    DEFAULT_TOLERANCE_SECONDS,
    Reason,
    WebhookVerificationError,
    verify,
    verify_standard,
    verify_vanta,
)

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "Reason",
    "WebhookVerificationError",
    "verify",
    "verify_standard",
    "verify_vanta",
]
