"""Expanding one manager order into one child order per registered follower."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

from vanta.domain import sizing_v1
from vanta.domain.errors import Conflict
from vanta.domain.followers import FollowerMode, FollowerSpec
from vanta.domain.ids import FollowerId, child_order_ids
from vanta.domain.money import ZERO, Instrument
from vanta.domain.orders import ChildOrder, ChildOrderState, ManagerOrder
from vanta.domain.overlays import OverlayEffect
from vanta.domain.sizing import (
    SIZING_VERSION,
    NavState,
    OrderContext,
    Sized,
    SizeResult,
    size_child,
)


class Sizer(Protocol):
    """``size_child`` of one sizing version."""

    def __call__(self, order: ManagerOrder, follower: FollowerSpec, instrument: Instrument,
                 ctx: OrderContext | None = None, *, held: Decimal = ...,
                 nav: NavState | None = None, price: Decimal | None = None) -> SizeResult: ...


# Every sizing version an order may have been stored with: replay sizes an order by the rules
# it was sized with, so a later fix never makes an old order look mismatched.
SIZERS: Mapping[int, Sizer] = {sizing_v1.VERSION: sizing_v1.size_child,
                               SIZING_VERSION: size_child}
# Snapshots stored before versions were recorded were sized by version 1.
UNVERSIONED = sizing_v1.VERSION


def sizer_for(version: int) -> Sizer:
    try:
        return SIZERS[version]
    except KeyError:
        raise Conflict(f"this order was sized with unknown sizing version {version}",
                       code="unknown_sizing_version") from None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Everything sizing reads, captured once per manager order so a replay is exact."""

    price: Decimal | None
    positions: Mapping[FollowerId, Decimal]
    manager_nav: Decimal | None = None
    manager_position: Decimal = ZERO
    navs: Mapping[FollowerId, NavState] = field(default_factory=dict)
    overlay: OverlayEffect = field(default_factory=OverlayEffect)
    sizing_version: int = SIZING_VERSION  # the rules the order is (or was) sized with

    def held(self, follower_id: FollowerId) -> Decimal:
        return self.positions.get(follower_id, ZERO)

    def context(self) -> OrderContext:
        return OrderContext(self.price, self.manager_nav, self.manager_position, self.overlay)

    def to_json(self) -> dict[str, Any]:
        return {
            "price": _s(self.price),
            "positions": {k: str(v) for k, v in sorted(self.positions.items())},
            "manager_nav": _s(self.manager_nav),
            "manager_position": str(self.manager_position),
            "navs": {k: [str(n.nav), str(n.peak), str(n.day_start)]
                     for k, n in sorted(self.navs.items())},
            "overlay": self.overlay.to_json(),
            "sizing_version": self.sizing_version,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Snapshot:
        navs = data.get("navs") or {}
        return cls(
            price=_d(data.get("price")),
            positions={FollowerId(k): Decimal(str(v))
                       for k, v in (data.get("positions") or {}).items()},
            manager_nav=_d(data.get("manager_nav")),
            manager_position=Decimal(str(data.get("manager_position", "0"))),
            navs={FollowerId(k): NavState(Decimal(v[0]), Decimal(v[1]), Decimal(v[2]))
                  for k, v in navs.items()},
            overlay=OverlayEffect.from_json(data.get("overlay")),
            sizing_version=int(data.get("sizing_version", UNVERSIONED)),
        )


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _d(v: object) -> Decimal | None:
    return None if v is None else Decimal(str(v))


@dataclass(frozen=True, slots=True)
class Expansion:
    children: tuple[ChildOrder, ...]
    pause: tuple[FollowerId, ...] = ()  # followers whose drawdown stop tripped

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
    """One child per follower, in follower-id order; the same inputs give the same children.
    Sized by the rules of ``snapshot.sizing_version``."""
    sizer = sizer_for(snapshot.sizing_version)
    children: list[ChildOrder] = []
    pause: list[FollowerId] = []
    ctx = snapshot.context()
    positions, navs = snapshot.positions, snapshot.navs
    child_id = child_order_ids(order.mo_id)
    for f in sorted(followers, key=lambda f: f.follower_id):
        fid = f.follower_id
        result = sizer(order, f, instrument, ctx, held=positions.get(fid, ZERO),
                       nav=navs.get(fid))
        fo_id = child_id(fid)
        if isinstance(result, Sized):
            state = (ChildOrderState.SHADOW if f.mode is FollowerMode.SHADOW
                     else ChildOrderState.PENDING)
            children.append(ChildOrder(
                fo_id=fo_id, mo_id=order.mo_id, follower_id=fid,
                symbol=result.symbol or order.symbol, venue=order.venue, side=order.side,
                qty=result.qty, cap_applied=result.cap_applied, state=state,
                skip_reason="shadow" if state is ChildOrderState.SHADOW else None,
                sizing=result.trace,
            ))
        else:
            if result.pause:
                pause.append(fid)
            children.append(ChildOrder(
                fo_id=fo_id, mo_id=order.mo_id, follower_id=fid,
                symbol=f.protections.symbol_map.get(order.symbol, order.symbol),
                venue=order.venue, side=order.side, qty=ZERO,
                cap_applied=result.reason == "cap_exhausted", state=ChildOrderState.SKIPPED,
                skip_reason=result.reason, sizing=result.trace,
            ))
    return Expansion(tuple(children), tuple(pause))
