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
        leaves = batches.get(r.event_id, [])
        for i, lf in enumerate(leaves):
            leaf = lf.leaf()
            if leaf.entity in FEED_ENTITIES:
                out.append(FeedItem(r.seq, leaf.entity, leaf.entity_id, leaf.action, leaf.ts,
                                    leaf.payload, i == len(leaves) - 1))
    return out
