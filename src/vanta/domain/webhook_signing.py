"""Outbound webhook signing: the Vanta scheme and Standard Webhooks, side by side.

Every delivery carries both header sets so receivers can use either a few lines of
``hmac`` (``X-Vanta-*``) or any Standard Webhooks library (``webhook-*``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets as _secrets
from collections.abc import Sequence

__all__ = [
    "SECRET_BYTES",
    "new_webhook_secret",
    "sign_standard",
    "sign_vanta",
    "signature_headers",
    "standard_secret_string",
]

SECRET_BYTES = 32
_STANDARD_PREFIX = "whsec_"


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes | bytearray) or not secret:
        raise ValueError("webhook secret must be non-empty bytes")


def _check_timestamp(timestamp: int) -> None:
    if isinstance(timestamp, bool) or not isinstance(timestamp, int) or timestamp < 0:
        raise ValueError("timestamp must be a non-negative int (unix seconds)")


def sign_vanta(secret: bytes, timestamp: int, body: bytes) -> str:
    """Return ``sha256=<hex HMAC-SHA256(secret, f"{timestamp}." + body)>``."""
    _check_secret(secret)
    _check_timestamp(timestamp)
    mac = hmac.new(bytes(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sign_standard(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return ``v1,<base64 HMAC-SHA256(secret, f"{msg_id}.{timestamp}." + body)>``."""
    _check_secret(secret)
    _check_timestamp(timestamp)
    if not msg_id:
        raise ValueError("msg_id must be non-empty")
    mac = hmac.new(bytes(secret), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode("ascii")


def signature_headers(
    secrets: Sequence[bytes], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Build the delivery headers; every active secret signs (rotation overlap)."""
    if isinstance(secrets, bytes | bytearray):
        raise TypeError("secrets must be a sequence of bytes, not a single bytes value")
    if not secrets:
        raise ValueError("at least one webhook secret is required")
    vanta = ", ".join(sign_vanta(s, timestamp, body) for s in secrets)
    standard = " ".join(sign_standard(s, msg_id, timestamp, body) for s in secrets)
    return {
        "Content-Type": "application/json",
        "X-Vanta-Timestamp": str(timestamp),
        "X-Vanta-Signature": vanta,
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": standard,
    }


def standard_secret_string(secret: bytes) -> str:
    """Return ``whsec_<base64(secret)>``, the form Standard Webhooks libraries accept."""
    _check_secret(secret)
    return _STANDARD_PREFIX + base64.b64encode(bytes(secret)).decode("ascii")


def new_webhook_secret() -> bytes:
    """Return a fresh random 32-byte webhook secret."""
    return _secrets.token_bytes(SECRET_BYTES)
