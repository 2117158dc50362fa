"""The child legs port: a cross-rail child's steps as stored rows, read by child order id so
any view of an order (its DAG, its replay) can list them next to its children. Kept apart
from ``ports.crossrail`` so the unit of work can name it without an import cycle."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from vanta.domain.legs import Leg, LegState
from vanta.domain.routing import LegKind


@dataclass(frozen=True, slots=True)
class LegRecord:
    leg_id: str
    fo_id: str
    tenant_id: str
    idx: int
    kind: str
    venue: str
    pair: str
    side: str
    amount: Decimal
    filled: Decimal
    state: str
    after_idx: int | None
    attempts: int
    reason: str | None
    # what a resize after a short predecessor needs (usdc_before, buffer, price, fee_bps,
    # lot_step, min_qty), fixed when the plan was made so a replay gives the same size
    context: Mapping[str, Any] | None
    updated_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> LegRecord:
        return cls(r["leg_id"], r["fo_id"], r["tenant_id"], int(r["idx"]), r["kind"],
                   r["venue"], r["pair"], r["side"], r["amount"], r["filled"], r["state"],
                   r["after_idx"], int(r["attempts"]), r["reason"], r["context"],
                   r["updated_at"])

    def leg(self) -> Leg:
        return Leg(self.fo_id, self.idx, LegKind(self.kind), self.venue, self.pair, self.side,
                   self.amount, LegState(self.state), self.after_idx, self.filled,
                   self.attempts, self.reason)


def leg_row(leg: Leg, *, tenant_id: str, at: datetime,
            context: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"leg_id": leg.leg_id, "fo_id": leg.fo_id, "tenant_id": tenant_id, "idx": leg.index,
            "kind": leg.kind.value, "venue": leg.venue, "pair": leg.pair, "side": leg.side,
            "amount": leg.amount, "filled": leg.filled, "state": leg.state.value,
            "after_idx": leg.after, "attempts": leg.attempts, "reason": leg.reason,
            "context": None if context is None else dict(context), "updated_at": at}


# A child that left without being executed (dead-lettered, withdrawn, refused) never runs
# its open legs: only what they filled still counts toward the follower's USDC estimate.
UNEXECUTED_CHILD_STATES = frozenset({"dlq", "cancelled", "failed"})


def counts_for_estimate(child_state: str, filled: Decimal) -> bool:
    return child_state not in UNEXECUTED_CHILD_STATES or filled > 0


class LegRepo(Protocol):
    async def add_many(self, rows: Sequence[Mapping[str, Any]]) -> None: ...

    async def get(self, tenant_id: str, leg_id: str) -> LegRecord | None: ...

    async def for_child(self, fo_id: str) -> builtins.list[LegRecord]:
        """A child's legs in plan order."""
        ...

    async def for_children(self, fo_ids: Iterable[str]) -> dict[str, builtins.list[LegRecord]]:
        ...

    async def for_followers(self, tenant_id: str, follower_ids: Iterable[str]
                            ) -> dict[str, builtins.list[LegRecord]]:
        """The legs of each follower's children, by follower (what its USDC estimate is
        built from), leaving out the unfilled legs of children that will never run them
        (``counts_for_estimate``); followers without legs are absent."""
        ...

    async def update(self, leg_id: str, *, expect_state: str, **values: Any) -> bool:
        """Compare-and-set on the state: False when the leg moved meanwhile."""
        ...
