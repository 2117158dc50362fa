"""Outbound webhook signing, importable from its former home; the pure functions live in
:mod:`vanta.domain.webhook_signing`."""

from vanta.domain.webhook_signing import (
    SECRET_BYTES,
    new_webhook_secret,
    sign_standard,
    sign_vanta,
    signature_headers,
    standard_secret_string,
)

__all__ = [
    "SECRET_BYTES",
    "new_webhook_secret",
    "sign_standard",
    "sign_vanta",
    "signature_headers",
    "standard_secret_string",
]
