"""Dead letters: list them, and send them again with the same webhook-id."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState


async def list_dead_letters(uow: UnitOfWork, *, tenant_id: str, since: datetime | None,
                            limit: int) -> list[dict[str, Any]]:
    async with uow:
        return await uow.child_orders.dead_letters(tenant_id, since=since, limit=limit)


async def redeliver(uow: UnitOfWork, *, tenant_id: str, fo_ids: Sequence[str] | None,
                    since: datetime | None, actor: str,
                    clock: Clock = utcnow) -> list[str]:
    """Move dead letters back to ``pending`` and queue them now. The child id, and so the
    ``webhook-id``, stays the same: a receiver that already applied it ignores it. Returns
    the ids requeued; ids that are not (or no longer) dead letters are left alone."""
    now = clock()
    requeued: list[str] = []
    async with uow:
        if fo_ids is not None:
            rows = [r for r in [await uow.child_orders.get(tenant_id, f) for f in fo_ids]
                    if r is not None and r["state"] == ChildOrderState.DLQ.value]
        else:
            rows = await uow.child_orders.dead_letters(tenant_id, since=since, limit=100_000)
        for r in rows:
            CHILD_ORDER_TABLE.check(ChildOrderState.DLQ, ChildOrderState.PENDING)
            if not await uow.child_orders.update(r["fo_id"], expect_state="dlq",
                                                 state="pending", dead_lettered_at=None,
                                                 updated_at=now):
                continue
            await uow.outbox.requeue(r["fo_id"], now)
            await uow.manager_orders.reopen(r["mo_id"])
            await uow.audit.append(entity="follower_order", entity_id=r["fo_id"],
                                   action="redelivery_requested", actor=actor,
                                   tenant_id=tenant_id,
                                   payload={"last_error": r["last_error"],
                                            "attempts_so_far": r["dispatch_attempts"]})
            requeued.append(r["fo_id"])
        await uow.commit()
    return requeued
