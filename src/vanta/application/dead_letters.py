"""Dead letters: list them, and send them again with the same webhook-id.

Both take the caller's narrowing (``vault_ids``, ``follower_id``; None: no narrowing) and apply
it where the rows are read, so a narrowed caller can neither see nor requeue a child outside
it: such a child is reported exactly like an id that does not exist."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from vanta.application.clock import Clock, utcnow
from vanta.application.observability import child_moved, journal
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState


@dataclass(frozen=True)
class Redelivery:
    requeued: list[str]
    # asked for by id but unknown, or outside the caller's narrowing: indistinguishable
    not_found: list[str]


def _within(row: ChildOrderRecord, vault_ids: frozenset[str] | None,
            follower_id: str | None) -> bool:
    return (vault_ids is None or row.vault_id in vault_ids) and \
        (follower_id is None or row.follower_id == follower_id)


async def list_dead_letters(uow: UnitOfWork, *, tenant_id: str, since: datetime | None,
                            limit: int, vault_ids: frozenset[str] | None = None,
                            follower_id: str | None = None,
                            after: tuple[datetime, str] | None = None
                            ) -> list[ChildOrderRecord]:
    async with uow:
        return await uow.child_orders.dead_letters(tenant_id, since=since, limit=limit,
                                                   vault_ids=vault_ids,
                                                   follower_id=follower_id, after=after)


async def redeliver(uow: UnitOfWork, *, tenant_id: str, fo_ids: Sequence[str] | None,
                    since: datetime | None, actor: str,
                    vault_ids: frozenset[str] | None = None, follower_id: str | None = None,
                    clock: Clock = utcnow,
                    on_progress: Callable[[int, int], None] | None = None) -> Redelivery:
    """Move dead letters back to ``pending`` and queue them now. The child id, and so the
    ``webhook-id``, stays the same: a receiver that already applied it ignores it. Ids that
    are visible but not (or no longer) dead letters are left alone; ids that are unknown or
    outside the narrowing are left alone and listed in ``not_found``. ``on_progress(done,
    total)`` is told after each row; all of them still commit in one transaction."""
    now = clock()
    requeued: list[str] = []
    not_found: list[str] = []
    moved: list[ChildOrderRecord] = []
    async with uow:
        if fo_ids is not None:
            rows: list[ChildOrderRecord] = []
            for f in dict.fromkeys(fo_ids):  # each id once, in the order given
                r = await uow.child_orders.get(tenant_id, f)
                if r is None or not _within(r, vault_ids, follower_id):
                    not_found.append(f)
                elif r.state == ChildOrderState.DLQ:
                    rows.append(r)
        else:
            rows = await uow.child_orders.dead_letters(tenant_id, since=since, limit=100_000,
                                                       vault_ids=vault_ids,
                                                       follower_id=follower_id)
        for i, r in enumerate(rows):
            if on_progress is not None:
                on_progress(i, len(rows))
            CHILD_ORDER_TABLE.check(ChildOrderState.DLQ, ChildOrderState.PENDING)
            if not await uow.child_orders.update(r.fo_id, expect_state="dlq",
                                                 state="pending", dead_lettered_at=None,
                                                 updated_at=now):
                continue
            await uow.outbox.requeue(r.fo_id, now)
            await uow.manager_orders.reopen(r.mo_id)
            await uow.audit.append(entity="follower_order", entity_id=r.fo_id,
                                   action="redelivery_requested", actor=actor,
                                   tenant_id=tenant_id,
                                   payload={"last_error": r.last_error,
                                            "attempts_so_far": r.dispatch_attempts})
            requeued.append(r.fo_id)
            moved.append(r)
        if on_progress is not None:
            on_progress(len(rows), len(rows))
        await uow.commit()
    for r in moved:  # once committed: the trade log's lines
        child_moved(journal(), r, "dlq", "pending", actor=actor)
    return Redelivery(requeued, not_found)
