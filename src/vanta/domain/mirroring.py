"""Expanding one manager order into one child order per registered follower."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from vanta.domain.errors import Conflict
from vanta.domain.followers import FollowerMode, FollowerSpec
from vanta.domain.ids import FollowerId, child_order_id
from vanta.domain.money import ZERO, Instrument
from vanta.domain.orders import ChildOrder, ChildOrderState, ManagerOrder
from vanta.domain.sizing import Sized, size_child


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything sizing reads, captured once per manager order so a replay is exact."""

    price: Decimal | None
    positions: Mapping[FollowerId, Decimal]

    def held(self, follower_id: FollowerId) -> Decimal:
        return self.positions.get(follower_id, ZERO)

    def to_json(self) -> dict[str, object]:
        return {
            "price": None if self.price is None else str(self.price),
            "positions": {k: str(v) for k, v in sorted(self.positions.items())},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> Snapshot:
        price = data.get("price")
        positions = data.get("positions") or {}
        assert isinstance(positions, dict)
        return cls(
            price=None if price is None else Decimal(str(price)),
            positions={FollowerId(k): Decimal(str(v)) for k, v in positions.items()},
        )


@dataclass(frozen=True, slots=True)
class Expansion:
    children: tuple[ChildOrder, ...]

    @property
    def dispatchable(self) -> tuple[ChildOrder, ...]:
        return tuple(c for c in self.children if c.state is ChildOrderState.PENDING)

    @property
    def skipped(self) -> tuple[ChildOrder, ...]:
        return tuple(c for c in self.children if c.state is not ChildOrderState.PENDING)


def ensure_vault_accepts_orders(maintenance: bool) -> None:
    if maintenance:
        raise Conflict("the vault is in maintenance; new orders are refused",
                       code="vault_in_maintenance")


def expand(
    order: ManagerOrder,
    followers: Iterable[FollowerSpec],
    instrument: Instrument,
    snapshot: Snapshot,
) -> Expansion:
    """One child per follower, in follower-id order; the same inputs give the same children."""
    children: list[ChildOrder] = []
    for f in sorted(followers, key=lambda f: f.follower_id):
        result = size_child(
            order, f, instrument, held=snapshot.held(f.follower_id), price=snapshot.price
        )
        fo_id = child_order_id(order.mo_id, f.follower_id)
        if isinstance(result, Sized):
            state = (ChildOrderState.SHADOW if f.mode is FollowerMode.SHADOW
                     else ChildOrderState.PENDING)
            children.append(ChildOrder(
                fo_id=fo_id, mo_id=order.mo_id, follower_id=f.follower_id,
                symbol=order.symbol, venue=order.venue, side=order.side, qty=result.qty,
                cap_applied=result.cap_applied, state=state,
                skip_reason="shadow" if state is ChildOrderState.SHADOW else None,
                sizing=result.trace,
            ))
        else:
            children.append(ChildOrder(
                fo_id=fo_id, mo_id=order.mo_id, follower_id=f.follower_id,
                symbol=order.symbol, venue=order.venue, side=order.side, qty=ZERO,
                cap_applied=result.reason == "cap_exhausted", state=ChildOrderState.SKIPPED,
                skip_reason=result.reason, sizing=result.trace,
            ))
    return Expansion(tuple(children))
