"""The tenant's stream of order events from the audit log, batch events opened into the
per-child records they carry, in chain order."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vanta.application.ports.uow import UnitOfWork
from vanta.domain.audit_batch import BATCH_ENTITY

FEED_ENTITIES = ("manager_order", "follower_order")


@dataclass(frozen=True, slots=True)
class FeedItem:
    seq: int  # the chained event's: every record of one batch event shares it
    entity: str
    entity_id: str
    action: str
    ts: str
    payload: Mapping[str, Any]
    closes_event: bool  # the last item of its event: resuming after ``seq`` is safe here


async def feed_items(uow: UnitOfWork, tenant_id: str, after_seq: int, limit: int
                     ) -> list[FeedItem]:
    """Up to ``limit`` chained events after ``after_seq``, as items."""
    rows = await uow.audit.feed(tenant_id, after_seq, (*FEED_ENTITIES, BATCH_ENTITY), limit)
    batches = await uow.audit.leaves_of([r.event_id for r in rows if r.entity == BATCH_ENTITY])
    out: list[FeedItem] = []
    for r in rows:
        if r.entity != BATCH_ENTITY:
            out.append(FeedItem(r.seq, r.entity, r.entity_id, r.action, r.ts, r.payload, True))
            continue
        shown = [lf for lf in (x.leaf() for x in batches.get(r.event_id, []))
                 if lf.entity in FEED_ENTITIES]
        out.extend(FeedItem(r.seq, lf.entity, lf.entity_id, lf.action, lf.ts, lf.payload,
                            i == len(shown) - 1) for i, lf in enumerate(shown))
    return out
