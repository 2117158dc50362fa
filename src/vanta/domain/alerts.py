"""Operator alerts: what they are about, and whether one goes out now (de-duplication and rate
limits). Pure: the caller supplies the clock reading and the alerts already sent."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

__all__ = ["AlertKind", "AlertPolicy", "SentAlert", "Verdict", "decide", "summary"]


class AlertKind(StrEnum):
    DEAD_LETTER = "dead_letter"  # a child order ran out of retries (mirror_dispatch_dlx)
    ENDPOINT_DISABLED = "endpoint_disabled"  # a follower's webhook answered 410 Gone
    BROKER_LOST_ORDER = "broker_lost_order"  # a venue forgot an order it had accepted
    TEST = "test"  # sent on request, to check a channel end to end


class Verdict(StrEnum):
    SEND = "send"
    DUPLICATE = "duplicate"  # the same kind and subject went out within the dedupe window
    RATE_LIMITED = "rate_limited"  # too many of this kind (or this subject) in the window


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """``dedupe_window``: one alert per (kind, subject) in it. ``window``: at most
    ``per_kind`` alerts of one kind and ``per_subject`` of one (kind, subject) go out in it;
    the rest are held back and counted in the next one that goes out."""

    dedupe_window: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(hours=1)
    per_kind: int = 20
    per_subject: int = 3

    def __post_init__(self) -> None:
        if self.per_kind < 1 or self.per_subject < 1:
            raise ValueError("alert limits must be at least 1")
        if self.dedupe_window < timedelta(0) or self.window <= timedelta(0):
            raise ValueError("alert windows must be positive")

    @property
    def lookback(self) -> timedelta:
        """How far back the sent alerts ``decide`` needs reach."""
        return max(self.dedupe_window, self.window)


@dataclass(frozen=True, slots=True)
class SentAlert:
    """One alert of the tenant that went out earlier (any channel)."""

    kind: str
    subject: str
    sent_at: datetime


def decide(kind: str, subject: str, now: datetime, sent: Iterable[SentAlert],
           policy: AlertPolicy) -> Verdict:
    """Whether an alert of ``kind`` about ``subject`` goes out at ``now``, given the tenant's
    alerts already sent. A test alert is never held back: the operator asked for it."""
    if kind == AlertKind.TEST:
        return Verdict.SEND
    same_kind = [s for s in sent if s.kind == kind and now - s.sent_at < policy.window]
    same_subject = [s for s in same_kind if s.subject == subject]
    if any(now - s.sent_at < policy.dedupe_window for s in same_subject):
        return Verdict.DUPLICATE
    if len(same_subject) >= policy.per_subject or len(same_kind) >= policy.per_kind:
        return Verdict.RATE_LIMITED
    return Verdict.SEND


_TITLES: dict[str, str] = {
    AlertKind.DEAD_LETTER: "a child order was dead-lettered after its last retry",
    AlertKind.ENDPOINT_DISABLED: "a follower's webhook endpoint was disabled (410 Gone)",
    AlertKind.BROKER_LOST_ORDER: "a broker has no record of an order it had accepted",
    AlertKind.TEST: "test alert",
}


def summary(kind: str, subject: str, held_back: int = 0) -> str:
    """One line for a subject header or a chat message."""
    title = _TITLES.get(kind, kind)  # StrEnum members hash as their values
    more = f" (+{held_back} similar held back)" if held_back else ""
    return f"[vanta] {title}: {subject}{more}"
