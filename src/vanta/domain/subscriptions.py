"""Subscription lifecycle and what a status means for feature access right now.

States (the names follow Stripe's subscription statuses so a billing adapter maps them 1:1):

    incomplete ──► trialing ──► active ◄──► past_due ──► unpaid
        │              │           │           │           │
        └──────────────┴───────────┴───────────┴───────────┴──► canceled (terminal)

- ``incomplete``: created, first payment not yet confirmed. No paid features.
- ``trialing``: free trial; full plan features.
- ``active``: paid up.
- ``past_due``: a renewal payment failed and is being retried. Features stay for a grace
  period counted from ``past_due_since`` (3 days by default), then drop.
- ``unpaid``: retries exhausted; the subscription still exists and paying the open invoice
  returns it to ``active``. No paid features.
- ``canceled``: terminal. Subscribing again creates a new subscription.

``effective_status`` turns (status, past_due_since, now) into one of ``entitled`` / ``grace`` /
``lapsed``; ``vanta.domain.entitlements.Entitlements.with_access`` applies it. Losing access
never closes or reduces a follower's positions: it only refuses new paid actions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from vanta.domain.errors import ValidationFailed
from vanta.domain.fsm import TransitionTable


class SubscriptionStatus(StrEnum):
    INCOMPLETE = "incomplete"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    UNPAID = "unpaid"
    CANCELED = "canceled"


S = SubscriptionStatus

SUBSCRIPTION_TABLE: TransitionTable[SubscriptionStatus] = TransitionTable(
    "subscription",
    {
        # first payment confirmed (or a trial started once checkout completed), or abandoned
        S.INCOMPLETE: frozenset({S.TRIALING, S.ACTIVE, S.CANCELED}),
        # the trial converts, or its first invoice fails, or the customer leaves
        S.TRIALING: frozenset({S.ACTIVE, S.PAST_DUE, S.CANCELED}),
        S.ACTIVE: frozenset({S.PAST_DUE, S.CANCELED}),
        # a retry succeeds, retries run out, or the subscription is canceled for non-payment
        S.PAST_DUE: frozenset({S.ACTIVE, S.UNPAID, S.CANCELED}),
        # the open invoice is paid late, or the customer leaves
        S.UNPAID: frozenset({S.ACTIVE, S.CANCELED}),
    },
)


class Access(StrEnum):
    """What a subscription grants at one instant."""

    ENTITLED = "entitled"  # plan features on
    GRACE = "grace"  # past_due inside the grace period: plan features still on
    LAPSED = "lapsed"  # no paid features (read-only audit access remains)

    @property
    def grants_features(self) -> bool:
        return self is not Access.LAPSED


DEFAULT_GRACE = timedelta(days=3)

_ENTITLED_STATUSES = frozenset({S.TRIALING, S.ACTIVE})


def parse_status(value: object) -> SubscriptionStatus:
    try:
        return SubscriptionStatus(value) if isinstance(value, str) else SubscriptionStatus("?")
    except ValueError:
        allowed = ", ".join(s.value for s in SubscriptionStatus)
        raise ValidationFailed(
            f"status must be one of {allowed}", code="invalid_subscription_status",
            field="status",
        ) from None


def transition(src: SubscriptionStatus, dst: SubscriptionStatus) -> SubscriptionStatus:
    """``dst`` if the move is allowed; raises ``InvalidTransition`` otherwise."""
    return SUBSCRIPTION_TABLE.check(src, dst)


def grace_ends_at(past_due_since: datetime, grace: timedelta = DEFAULT_GRACE) -> datetime:
    return past_due_since + grace


def effective_status(
    status: SubscriptionStatus | str,
    past_due_since: datetime | None,
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
) -> Access:
    """Feature access for ``status`` at ``now``.

    ``trialing``/``active`` are entitled; ``past_due`` is ``grace`` for the half-open interval
    ``[past_due_since, past_due_since + grace)`` and ``lapsed`` from its end on (a clock
    reading before ``past_due_since`` counts as inside the grace period); ``incomplete``,
    ``unpaid`` and ``canceled`` are lapsed. A ``past_due`` subscription must carry
    ``past_due_since``: without it the caller's data is wrong and this raises ``ValueError``
    rather than guess in either direction.
    """
    st = parse_status(status) if not isinstance(status, SubscriptionStatus) else status
    if grace < timedelta(0):
        raise ValueError("grace must not be negative")
    if st in _ENTITLED_STATUSES:
        return Access.ENTITLED
    if st is S.PAST_DUE:
        if past_due_since is None:
            raise ValueError("a past_due subscription needs past_due_since")
        return Access.GRACE if now < grace_ends_at(past_due_since, grace) else Access.LAPSED
    return Access.LAPSED
