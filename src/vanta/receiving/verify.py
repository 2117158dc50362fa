"""Receiver-side verification of Vanta webhook deliveries.

Standalone on purpose: imports nothing from ``vanta`` outside ``vanta.receiving`` so a receiver
can vendor or install just this package. Two schemes are checked:

* Vanta: ``X-Vanta-Timestamp`` + ``X-Vanta-Signature: sha256=<hex>``, HMAC-SHA256 over
  ``f"{timestamp}." + body``.
* Standard Webhooks: ``webhook-id`` + ``webhook-timestamp`` + ``webhook-signature: v1,<b64>``,
  HMAC-SHA256 over ``f"{id}.{timestamp}." + body``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Mapping
from typing import Literal

__all__ = [
    "DEFAULT_TOLERANCE_SECONDS",
    "Reason",
    "WebhookVerificationError",
    "verify",
    "verify_standard",
    "verify_vanta",
]

DEFAULT_TOLERANCE_SECONDS = 300

Reason = Literal["missing_headers", "bad_timestamp", "stale_timestamp", "bad_signature"]

_VANTA_TS = "x-vanta-timestamp"
_VANTA_SIG = "x-vanta-signature"
_STD_ID = "webhook-id"
_STD_TS = "webhook-timestamp"
_STD_SIG = "webhook-signature"
_WHSEC = "whsec_"
_MAX_TS_DIGITS = 15
_SPLIT_VANTA = re.compile(r"[\s,]+")


class WebhookVerificationError(Exception):
    """A delivery failed verification; ``reason`` is a stable short code."""

    def __init__(self, reason: Reason, message: str | None = None) -> None:
        super().__init__(message or reason)
        self.reason: Reason = reason


def _lower(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): v for k, v in headers.items()}


def _secret_bytes(secret: bytes | str) -> bytes:
    """Accept raw bytes or a ``whsec_<base64>`` string."""
    if isinstance(secret, bytes | bytearray):
        key = bytes(secret)
    elif isinstance(secret, str):
        if not secret.startswith(_WHSEC):
            raise ValueError("a string secret must have the form 'whsec_<base64>'")
        encoded = secret[len(_WHSEC):].strip()
        encoded += "=" * (-len(encoded) % 4)
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("secret is not valid 'whsec_<base64>'") from None
    else:
        raise TypeError("secret must be bytes or a 'whsec_...' string")
    if not key:
        raise ValueError("webhook secret must not be empty")
    return key


def _body_bytes(body: bytes) -> bytes:
    if isinstance(body, str):
        raise TypeError("pass the raw request body as bytes, exactly as received")
    return bytes(body)


def _timestamp(raw: str) -> int:
    value = raw.strip()
    if not value or len(value) > _MAX_TS_DIGITS or not (value.isascii() and value.isdigit()):
        raise WebhookVerificationError("bad_timestamp", "timestamp is not unix seconds")
    return int(value)


def _check_fresh(ts: int, tolerance: float, now: float | None) -> None:
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance:
        raise WebhookVerificationError("stale_timestamp", "timestamp outside tolerance")


def _mac(secret: bytes, prefix: str, body: bytes) -> bytes:
    return hmac.new(secret, prefix.encode() + body, hashlib.sha256).digest()


def verify_vanta(
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Verify the ``X-Vanta-*`` headers; raise WebhookVerificationError on failure."""
    key, data, h = _secret_bytes(secret), _body_bytes(body), _lower(headers)
    raw_ts, raw_sig = h.get(_VANTA_TS), h.get(_VANTA_SIG)
    if not raw_ts or not raw_sig:
        raise WebhookVerificationError("missing_headers", "X-Vanta-Timestamp/Signature missing")
    ts = _timestamp(raw_ts)
    _check_fresh(ts, tolerance, now)
    expected = _mac(key, f"{ts}.", data)
    for token in _SPLIT_VANTA.split(raw_sig.strip()):
        scheme, sep, value = token.partition("=")
        if not sep or scheme.lower() != "sha256":
            continue
        try:
            candidate = bytes.fromhex(value)
        except ValueError:
            continue
        if hmac.compare_digest(expected, candidate):
            return
    raise WebhookVerificationError("bad_signature", "no matching X-Vanta-Signature")


def verify_standard(
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> None:
    """Verify the Standard Webhooks ``webhook-*`` headers; raise on failure."""
    key, data, h = _secret_bytes(secret), _body_bytes(body), _lower(headers)
    msg_id, raw_ts, raw_sig = h.get(_STD_ID), h.get(_STD_TS), h.get(_STD_SIG)
    if not msg_id or not raw_ts or not raw_sig:
        raise WebhookVerificationError("missing_headers", "webhook-id/timestamp/signature missing")
    ts = _timestamp(raw_ts)
    _check_fresh(ts, tolerance, now)
    expected = _mac(key, f"{msg_id}.{ts}.", data)
    for token in raw_sig.split():
        version, sep, value = token.partition(",")
        if not sep or version != "v1":
            continue
        try:
            candidate = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            continue
        if hmac.compare_digest(expected, candidate):
            return
    raise WebhookVerificationError("bad_signature", "no matching webhook-signature")


def verify(
    headers: Mapping[str, str],
    body: bytes,
    secret: bytes | str,
    *,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
    require: Literal["any", "both"] = "any",
) -> None:
    """Verify every scheme present (at least one); ``require="both"`` demands both."""
    if require not in ("any", "both"):
        raise ValueError("require must be 'any' or 'both'")
    h = _lower(headers)
    current = time.time() if now is None else now
    has_vanta = require == "both" or any(k in h for k in (_VANTA_TS, _VANTA_SIG))
    has_std = require == "both" or any(k in h for k in (_STD_ID, _STD_TS, _STD_SIG))
    if not has_vanta and not has_std:
        raise WebhookVerificationError("missing_headers", "no webhook signature headers")
    if has_vanta:
        verify_vanta(h, body, secret, tolerance=tolerance, now=current)
    if has_std:
        verify_standard(h, body, secret, tolerance=tolerance, now=current)
