"""Stripe webhooks in: signature verification, then translation into billing facts.

``verify_stripe_event`` checks a ``Stripe-Signature`` with ``stripe.Webhook.construct_event``
and returns a plain ``StripeEvent``; ``StripeWebhooks`` is the application's
``WebhookVerifier`` for Stripe (verify, then ``translate_event``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import stripe

from vanta.adapters.billing.stripe_events import StripeEvent, parse_event, translate_event
from vanta.application.ports.billing import BillingEventRejected
from vanta.application.ports.billing_facts import InboundEvent

__all__ = ["DEFAULT_TOLERANCE", "StripeWebhooks", "verify_stripe_event"]

DEFAULT_TOLERANCE: Final = 300


def verify_stripe_event(payload: bytes | str, sig_header: str | None, secret: str, *,
                        tolerance: int = DEFAULT_TOLERANCE) -> StripeEvent:
    """Verify a Stripe webhook and return it as a ``StripeEvent``.

    Refuses with ``BillingEventRejected``: ``missing_signature`` (no header), ``bad_signature``
    (wrong secret, tampered body, unparsable header), ``stale`` (correctly signed, but the
    signed timestamp is more than ``tolerance`` seconds old: a replay), ``malformed`` (the
    signed body is not a Stripe event). The signature is checked before anything else.
    """
    if not secret:
        raise ValueError("a webhook secret is required")
    if tolerance <= 0:  # the SDK reads 0 as "no check", which would accept any replay
        raise ValueError("tolerance must be a positive number of seconds")
    if not sig_header or not sig_header.strip():
        raise BillingEventRejected("missing_signature")
    if isinstance(payload, (bytes, bytearray)):
        try:  # Stripe signs UTF-8 JSON; anything else cannot be one of its events
            text = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise BillingEventRejected("malformed", "body is not UTF-8") from None
    else:
        text = payload
    try:
        stripe.Webhook.construct_event(text, sig_header, secret, tolerance=tolerance)
    except stripe.SignatureVerificationError:
        raise BillingEventRejected(_signature_failure(text, sig_header, secret)) from None
    except (ValueError, TypeError, AttributeError, KeyError):  # signed, but not an event
        raise BillingEventRejected("malformed", "body is not a Stripe event") from None
    return parse_event(text)


def _signature_failure(payload: str, sig_header: str, secret: str) -> str:
    """Why ``construct_event`` refused: a valid signature outside the tolerance is ``stale``."""
    try:
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, tolerance=None)
    except (stripe.SignatureVerificationError, ValueError):
        return "bad_signature"
    return "stale"


class StripeWebhooks:
    """``WebhookVerifier`` for Stripe: a delivery becomes an ``InboundEvent`` keyed by the
    Stripe event id."""

    provider = "stripe"

    def __init__(self, secret: str, plans_by_price: Mapping[str, str], *,
                 tolerance: int = DEFAULT_TOLERANCE) -> None:
        if not secret:
            raise ValueError("a webhook secret is required")
        self._secret = secret
        self._plans_by_price = dict(plans_by_price)
        self._tolerance = tolerance

    def __repr__(self) -> str:  # never show the secret
        return "StripeWebhooks()"

    def verify(self, body: bytes, signature: str | None) -> InboundEvent:
        event = verify_stripe_event(body, signature, self._secret, tolerance=self._tolerance)
        return InboundEvent(self.provider, event.id, event.type,
                            translate_event(event, plans_by_price=self._plans_by_price))
