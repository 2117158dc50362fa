"""Delivery health over time for the operations dashboard: per time bucket, the dispatch
latency P50/P95, the error rate, retries and dead letters of one tenant. Read from the
attempt rows and the dead-letter times the dispatcher already writes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from vanta.application.ports.uow import UnitOfWork

OK_OUTCOMES = frozenset({"ack", "confirmed"})
UNANSWERED = frozenset({"in_flight"})


@dataclass(frozen=True)
class Bucket:
    start: datetime
    attempts: int
    p50_ms: int | None
    p95_ms: int | None
    error_rate: float | None  # failed answers / answered attempts
    retries: int  # attempts after a child's first
    dead_letters: int


def percentile(sorted_values: list[int], pct: int) -> int | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def dispatch_series(uow: UnitOfWork, *, tenant_id: str, now: datetime,
                          window: timedelta = timedelta(hours=6), buckets: int = 12,
                          limit: int = 100_000) -> list[Bucket]:
    """``buckets`` equal slices of the ``window`` ending at ``now``, oldest first. At most
    ``limit`` attempts and dead letters are read (the oldest of the window first)."""
    since = now - window
    step = window / buckets
    async with uow:
        attempts = await uow.attempts.started_since(tenant_id, since, limit)
        dead = await uow.child_orders.dead_letters(tenant_id, since=since, limit=limit)
    lat: list[list[int]] = [[] for _ in range(buckets)]
    answered, failed, retries, dlq = ([0] * buckets for _ in range(4))
    count = [0] * buckets

    def slot(ts: datetime) -> int:
        return min(buckets - 1, max(0, int((ts - since) / step)))

    for a in attempts:
        i = slot(a.started_at)
        count[i] += 1
        if a.attempt_no > 1:
            retries[i] += 1
        if a.outcome in UNANSWERED:
            continue
        answered[i] += 1
        lat[i].append(a.latency_ms)
        if a.outcome not in OK_OUTCOMES:
            failed[i] += 1
    for d in dead:
        if d.dead_lettered_at is not None:
            dlq[slot(d.dead_lettered_at)] += 1
    out = []
    for i in range(buckets):
        ms = sorted(lat[i])
        out.append(Bucket(since + step * i, count[i], percentile(ms, 50), percentile(ms, 95),
                          failed[i] / answered[i] if answered[i] else None, retries[i],
                          dlq[i]))
    return out
