"""Webhook delivery policy: what an answer means and when to try again."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

RETRYABLE_STATUS = frozenset({408, 425, 429})
MAX_RETRY_AFTER_SECONDS = 300.0


class Outcome(StrEnum):
    ACK = "ack"
    RETRY = "retry"
    FAILED = "failed"  # terminal: the receiver refused the message


def classify(status: int | None) -> Outcome:
    """``None`` means no HTTP answer (timeout, refused, reset): worth another try."""
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.ACK
    if status >= 500 or status in RETRYABLE_STATUS:
        return Outcome.RETRY
    return Outcome.FAILED


def retry_delay(
    attempt_no: int, schedule: Sequence[float], *, jitter_fraction: float, unit_random: float,
    retry_after: float | None = None,
) -> float | None:
    """Delay before the next try after failed attempt ``attempt_no`` (1-based); None = give up.

    Jitter spreads retries of a fan-out over ±``jitter_fraction`` of the step so a receiver
    that came back is not hit by every follower at the same instant. A receiver's
    ``Retry-After`` is honoured when longer than our step, up to a bound.
    """
    if attempt_no < 1 or attempt_no > len(schedule):
        return None
    base = schedule[attempt_no - 1]
    delay = base * (1 + jitter_fraction * (2 * unit_random - 1))
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, MAX_RETRY_AFTER_SECONDS)
    return max(delay, 0.0)


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # HTTP-date form is not worth trusting across clocks
    return seconds if seconds >= 0 else None
