"""What a follower would receive, with its current settings, on the NAVs at a given time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from vanta.application.followers import (
    PATCH_FIELDS,
    check_fields,
    follower_spec,
    parse_settings,
)
from vanta.application.manager_orders import order_from_row, parse_order_input
from vanta.application.ports.reconciliation import NOT_MANAGER_SOURCES
from vanta.application.ports.uow import UnitOfWork
from vanta.application.snapshots import build_snapshot, follower_navs, instrument_for
from vanta.domain.errors import NotFound
from vanta.domain.followers import FollowerMode, FollowerSpec, ScaleMode
from vanta.domain.ids import FollowerId
from vanta.domain.mirroring import Snapshot
from vanta.domain.money import Instrument
from vanta.domain.sizing import Sized, SizeResult, size_child


async def _resize_recent(uow: UnitOfWork, tenant_id: str, vault_id: str, spec: FollowerSpec,
                         navs: Mapping[FollowerId, Any], asof: datetime, limit: int
                         ) -> list[dict[str, Any]]:
    """The vault's last ``limit`` manager orders up to ``asof``, each re-sized on its own
    stored price, manager position and instrument for ``spec``."""
    fid = spec.follower_id
    rows = await uow.manager_orders.list(tenant_id, None, 10_000, vault_id=vault_id)
    rows = [r for r in rows if r.created_at <= asof and r.source not in NOT_MANAGER_SOURCES]
    items: list[dict[str, Any]] = []
    for mo in rows[-limit:]:
        order = order_from_row(mo)
        stored = mo.snapshot or {}
        snap = Snapshot.from_json(stored)
        inst_json = stored.get("instrument")
        inst = Instrument.from_json(inst_json) if inst_json else \
            await instrument_for(uow, order.symbol, order.venue)
        r = size_child(order, spec, inst, snap.context(),
                       held=snap.positions.get(fid, Decimal(0)), nav=navs.get(fid))
        items.append({"mo_id": mo.mo_id, "id": mo.client_order_id,
                      "symbol": order.symbol, "side": order.side.value,
                      "manager_qty": str(order.qty), **_result_json(r)})
    return items


async def preview_change(uow: UnitOfWork, *, tenant_id: str, follower_id: str,
                         raw: Mapping[str, Any], asof: datetime, limit: int = 20
                         ) -> dict[str, Any]:
    """The sizing a settings change would give, before it is saved: the vault's recent
    orders re-sized with the current settings and with ``raw`` applied (validated exactly
    as ``patch_follower`` validates it), side by side. Nothing is written."""
    async with uow:
        row = await uow.followers.get(tenant_id, follower_id)
        if row is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        changes = parse_settings(check_fields(raw, PATCH_FIELDS), row)
        fields: dict[str, Any] = {k: (FollowerMode(v) if k == "mode" else
                                      ScaleMode(v) if k == "scale_mode" else v)
                                  for k, v in changes.items()}
        proposed = replace(row, **fields)
        now_spec, new_spec = follower_spec(row), follower_spec(proposed)
        navs = await follower_navs(uow, [now_spec], asof)
        before = await _resize_recent(uow, tenant_id, row.vault_id, now_spec, navs, asof,
                                      limit)
        after = await _resize_recent(uow, tenant_id, row.vault_id, new_spec, navs, asof,
                                     limit)
    return {"follower_id": follower_id, "asof": asof.isoformat(), "settings": changes,
            "data": [{**b, "proposed_qty": a["qty"], "proposed_skip_reason":
                      a["skip_reason"], "proposed_cap_applied": a["cap_applied"]}
                     for b, a in zip(before, after, strict=True)]}


def _result_json(r: SizeResult) -> dict[str, Any]:
    if isinstance(r, Sized):
        return {"qty": str(r.qty), "cap_applied": r.cap_applied, "skip_reason": None,
                "symbol": r.symbol, "sizing": r.trace}
    return {"qty": "0", "cap_applied": r.reason == "cap_exhausted", "skip_reason": r.reason,
            "symbol": None, "sizing": r.trace}


async def preview_follower(
    uow: UnitOfWork, *, tenant_id: str, follower_id: str, asof: datetime,
    hypothetical: dict[str, Any] | None = None, limit: int = 20,
) -> dict[str, Any]:
    """With ``hypothetical`` (symbol, side, qty, ref_price…), size that order; otherwise
    re-size the vault's last ``limit`` manager orders up to ``asof``, each on its own stored
    price and manager position, with this follower's current settings and its NAV at
    ``asof``. Nothing is written."""
    async with uow:
        row = await uow.followers.get(tenant_id, follower_id)
        if row is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        spec = follower_spec(row)
        fid = FollowerId(follower_id)
        navs = await follower_navs(uow, [spec], asof)
        items: list[dict[str, Any]] = []
        if hypothetical is not None:
            order = parse_order_input({**hypothetical, "id": "preview"},
                                      vault_id=row.vault_id)
            snap = await build_snapshot(uow, order, [spec], asof, order.manager_nav)
            inst = await instrument_for(uow, order.symbol, order.venue)
            r = size_child(order, spec, inst, snap.context(), held=snap.held(fid),
                           nav=navs.get(fid))
            items.append({"symbol": order.symbol, "side": order.side.value,
                          "manager_qty": str(order.qty), **_result_json(r)})
        else:
            items = await _resize_recent(uow, tenant_id, row.vault_id, spec, navs, asof,
                                         limit)
    nav = navs.get(fid)
    return {"follower_id": follower_id, "asof": asof.isoformat(),
            "nav": None if nav is None else {"nav": str(nav.nav), "peak": str(nav.peak),
                                             "day_start": str(nav.day_start)},
            "data": items}
