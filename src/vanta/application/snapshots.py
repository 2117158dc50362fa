"""Building the one snapshot each manager order is sized on, and narrowing it to what one
caller may see."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from vanta.application.ports.uow import UnitOfWork
from vanta.application.principal import Principal
from vanta.domain.followers import FollowerSpec, ScaleMode
from vanta.domain.ids import FollowerId
from vanta.domain.mirroring import Snapshot
from vanta.domain.money import Instrument, default_instrument
from vanta.domain.navs import nav_state
from vanta.domain.orders import ManagerOrder
from vanta.domain.overlays import effect_of
from vanta.domain.sizing import NavState

# Where an order's instrument rules came from, recorded in its snapshot: the venue's rule in
# the catalogue, or the built-in default (default_instrument) for a symbol without one.
CATALOGUE = "catalogue"
DEFAULT = "default"


async def instrument_for(uow: UnitOfWork, symbol: str, venue: str) -> Instrument:
    return (await instrument_with_source(uow, symbol, venue))[0]


async def instrument_with_source(uow: UnitOfWork, symbol: str,
                                 venue: str) -> tuple[Instrument, str]:
    rec = await uow.instruments.get(symbol, venue)
    if rec is None:
        return default_instrument(symbol, venue), DEFAULT
    return rec.instrument(), CATALOGUE


def _needs_nav(s: FollowerSpec) -> bool:
    p = s.protections
    return s.scale_mode is ScaleMode.NAV_RATIO or p.drawdown_stop_pct is not None or \
        p.daily_loss_limit_usd is not None


async def follower_navs(uow: UnitOfWork, specs: Sequence[FollowerSpec],
                        at: datetime) -> dict[FollowerId, NavState]:
    ids = [s.follower_id for s in specs if _needs_nav(s)]
    history = await uow.navs.history("follower", ids, at) if ids else {}
    out: dict[FollowerId, NavState] = {}
    for fid, rows in history.items():
        st = nav_state(rows, at)
        if st is not None:
            out[FollowerId(fid)] = st
    return out


async def build_snapshot(uow: UnitOfWork, order: ManagerOrder,
                         specs: Sequence[FollowerSpec], at: datetime,
                         manager_nav: Decimal | None = None) -> Snapshot:
    mapped = {s.follower_id: s.protections.symbol_map.get(order.symbol, order.symbol)
              for s in specs}
    held = await uow.child_orders.positions([s.follower_id for s in specs],
                                            set(mapped.values()) | {order.symbol})
    positions = {fid: held[(fid, sym)] for fid, sym in mapped.items()
                 if held.get((fid, sym), Decimal(0)) != 0}
    if manager_nav is None:
        hist = await uow.navs.history("vault", [order.vault_id], at)
        st = nav_state(hist.get(order.vault_id, []), at)
        manager_nav = st.nav if st else None
    overlays = [r.overlay() for r in await uow.overlays.active(order.vault_id, at)]
    return Snapshot(
        price=order.ref_price, positions=positions, manager_nav=manager_nav,
        manager_position=await uow.manager_orders.net_position(order.vault_id, order.symbol),
        navs=await follower_navs(uow, specs, at), overlay=effect_of(overlays, at),
    )


# The parts of a snapshot (as stored or as sent in an event) keyed by follower id.
_PER_FOLLOWER_MAPS = ("positions", "navs")


def narrow_snapshot(p: Principal, snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """The snapshot as ``p`` may see it: every per-follower entry (positions, NAV states,
    stored follower settings) of a follower ``p`` may not see is removed. The vault-wide
    parts (price, the manager's NAV and position, overlay, instrument) stay: whoever may see
    the order may see its vault. The one place a snapshot is narrowed; every answer or event
    that carries a snapshot goes through it."""
    out = dict(snapshot)
    if p.follower_id is None:
        return out
    for key in _PER_FOLLOWER_MAPS:
        if isinstance(out.get(key), Mapping):
            out[key] = {k: v for k, v in out[key].items() if p.may_see_follower(k)}
    if isinstance(out.get("followers"), list):
        out["followers"] = [f for f in out["followers"]
                            if isinstance(f, Mapping)
                            and p.may_see_follower(str(f.get("follower_id")))]
    return out


def narrow_payload(p: Principal, payload: Mapping[str, Any]) -> dict[str, Any]:
    """An event payload with any snapshot in it narrowed for ``p``."""
    out = dict(payload)
    if isinstance(out.get("snapshot"), Mapping):
        out["snapshot"] = narrow_snapshot(p, out["snapshot"])
    return out
