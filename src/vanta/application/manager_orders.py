"""Ingesting a manager order: validate, expand, and write everything in one transaction."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from vanta.application import observability, tracing
from vanta.application.clock import Clock, utcnow
from vanta.application.crossrail_plan import route_children, store_routes
from vanta.application.followers import UNFOLLOWED, follower_spec
from vanta.application.payloads import OrderPart
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import ManagerOrderRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.application.snapshots import DEFAULT, build_snapshot, instrument_with_source
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.followers import FollowerSpec
from vanta.domain.ids import ManagerOrderId, VaultId, manager_order_id, new_id
from vanta.domain.legs import Leg
from vanta.domain.mirroring import Expansion, Snapshot, ensure_vault_accepts_orders, expand
from vanta.domain.money import Instrument, normalize
from vanta.domain.navs import parse_nav
from vanta.domain.orders import (
    ManagerOrder,
    ManagerOrderState,
    Side,
    TimeInForce,
    parse_client_order_id,
    parse_price,
    parse_qty,
    parse_side,
    parse_symbol,
    parse_tif,
    parse_venue,
)

DISPATCH_TOPIC = "mirror.dispatch"
MAX_META_BYTES = 16_384
ALLOWED_FIELDS = frozenset({
    "id", "vault_id", "symbol", "venue", "side", "qty", "tif", "time_in_force", "ref_price",
    "closes_position", "manager_nav", "reason_vector", "conviction", "provenance", "dag_id",
    "meta",
})
PASSTHROUGH_FIELDS = ("reason_vector", "conviction", "provenance", "dag_id", "meta")


def parse_order_input(raw: object, *, vault_id: str | None = None) -> ManagerOrder:
    """Validate one order as received (JSON object); raises ValidationFailed naming the field."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("an order must be a JSON object", code="invalid_order")
    unknown = sorted(set(raw) - ALLOWED_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}",
                               code="unknown_field", field=unknown[0])
    vid = vault_id if vault_id is not None else raw.get("vault_id")
    if not isinstance(vid, str) or not vid:
        raise ValidationFailed("vault_id is required", code="missing_field", field="vault_id")
    for name in ("symbol", "side", "qty"):
        if raw.get(name) is None:
            raise ValidationFailed(f"{name} is required", code="missing_field", field=name)
    coid = parse_client_order_id(raw["id"]) if raw.get("id") is not None else new_id()
    if coid.startswith("sync:"):
        raise ValidationFailed("ids starting with 'sync:' are reserved", code="invalid_order_id",
                               field="id")
    closes = raw.get("closes_position", False)
    if not isinstance(closes, bool):
        raise ValidationFailed("closes_position must be true or false", code="invalid_boolean",
                               field="closes_position")
    meta = {k: raw[k] for k in PASSTHROUGH_FIELDS if raw.get(k) is not None}
    if len(json.dumps(meta, default=str)) > MAX_META_BYTES:
        raise ValidationFailed("metadata is too large", code="metadata_too_large", field="meta")
    mnav = raw.get("manager_nav")
    return ManagerOrder(
        mo_id=manager_order_id(vid, coid), vault_id=VaultId(vid), client_order_id=coid,
        symbol=parse_symbol(raw["symbol"]), venue=parse_venue(raw.get("venue")),
        side=parse_side(raw["side"]), qty=parse_qty(raw["qty"]),
        tif=parse_tif(raw.get("tif", raw.get("time_in_force"))),
        ref_price=parse_price(raw.get("ref_price")), closes_position=closes,
        meta=json.loads(json.dumps(meta, default=str)),
        manager_nav=None if mnav is None else parse_nav(mnav),
    )


@dataclass(frozen=True)
class Submitted:
    order: ManagerOrder
    created: bool  # False: the same order was already ingested; nothing was written
    expansion: Expansion | None
    state: str
    record: ManagerOrderRecord | None = None  # the order's row (written now, or found)


def _same_order(row: ManagerOrderRecord, order: ManagerOrder) -> bool:
    return (row.symbol == order.symbol and row.venue == order.venue
            and row.side == order.side and row.qty == order.qty
            and row.tif == order.tif and row.ref_price == order.ref_price
            and row.closes_position == order.closes_position)


def _snapshot_json(snapshot: Snapshot, specs: Sequence[FollowerSpec],
                   instrument: Instrument, instrument_source: str) -> dict[str, Any]:
    return {**snapshot.to_json(), "followers": [s.to_json() for s in specs],
            "instrument": instrument.to_json(), "instrument_source": instrument_source}


def _unknown_instrument(order: ManagerOrder) -> ValidationFailed:
    return ValidationFailed(f"no instrument rule for {order.symbol} at venue {order.venue}",
                            code="unknown_instrument", field="symbol")


async def _expand_and_store(
    uow: UnitOfWork, *, tenant_id: str, order: ManagerOrder, source: str, actor: str,
    now: datetime, only: Callable[[FollowerSpec], bool] | None = None,
    require_instrument: bool = False,
    adjust: Callable[[FollowerSpec], FollowerSpec] | None = None,
    rails: Mapping[str, Any] | None = None,
) -> Expansion:
    return (await _expand_store_row(uow, tenant_id=tenant_id, order=order, source=source,
                                    actor=actor, now=now, only=only,
                                    require_instrument=require_instrument, adjust=adjust,
                                    rails=rails))[0]


async def _expand_store_row(
    uow: UnitOfWork, *, tenant_id: str, order: ManagerOrder, source: str, actor: str,
    now: datetime, only: Callable[[FollowerSpec], bool] | None = None,
    require_instrument: bool = False,
    adjust: Callable[[FollowerSpec], FollowerSpec] | None = None,
    rails: Mapping[str, Any] | None = None,
) -> tuple[Expansion, ManagerOrderRecord]:
    """The expansion and the order's row as stored (the answer needs no read back)."""
    instrument, instrument_source = await instrument_with_source(uow, order.symbol, order.venue)
    if require_instrument and instrument_source == DEFAULT:
        raise _unknown_instrument(order)
    rows = await uow.followers.list_for_vault(tenant_id, order.vault_id)
    # an unfollowed follower gets no new children (its history stays)
    specs = [s for s in (follower_spec(r) for r in rows if r.paused_reason != UNFOLLOWED)
             if only is None or only(s)]
    if adjust is not None:
        specs = [adjust(s) for s in specs]
    snapshot = await build_snapshot(uow, order, specs, now, order.manager_nav)
    expansion = expand(order, specs, instrument, snapshot)
    if rails is None:
        vault = await uow.vaults.get(tenant_id, order.vault_id)
        rails = {} if vault is None else vault.rails
    # a crypto order reaching a USD-funded follower: its child is executed by legs
    routed = await route_children(uow, rails=rails, order=order, expansion=expansion,
                                  followers=rows, instrument=instrument, snapshot=snapshot)
    expansion = routed.expansion
    state = ManagerOrderState.EXPANDED if expansion.dispatchable else ManagerOrderState.COMPLETED
    row = {
        "mo_id": order.mo_id, "tenant_id": tenant_id, "vault_id": order.vault_id,
        "client_order_id": order.client_order_id, "source": source,
        "symbol": order.symbol, "venue": order.venue, "side": order.side.value,
        "qty": order.qty, "tif": order.tif.value, "ref_price": order.ref_price,
        "closes_position": order.closes_position, "meta": order.meta,
        "snapshot": _snapshot_json(snapshot, specs, instrument, instrument_source),
        "state": state.value, "created_at": now,
    }
    await uow.manager_orders.add(row)
    await uow.child_orders.add_many(expansion.children, tenant_id=tenant_id,
                                    vault_id=order.vault_id, now=now)
    legs = await store_routes(uow, routed, tenant_id=tenant_id, now=now)
    await uow.outbox.add_many(DISPATCH_TOPIC, _outbox_items(order, expansion, rows, legs), now)
    # One run of the hash chain for the order, its children and any pauses, in that order.
    events: list[dict[str, Any]] = [{
        "entity": "manager_order", "entity_id": order.mo_id, "action": "received",
        "actor": actor, "tenant_id": tenant_id,
        "payload": {"source": source, "client_order_id": order.client_order_id,
                    "symbol": order.symbol, "side": order.side.value, "qty": str(order.qty),
                    "instrument_source": instrument_source,
                    "snapshot": snapshot.to_json()}}]
    events += [{
        "entity": "follower_order", "entity_id": c.fo_id, "action": f"created:{c.state.value}",
        "actor": "orchestrator", "tenant_id": tenant_id,
        "payload": {"mo_id": c.mo_id, "follower_id": c.follower_id, "symbol": c.symbol,
                    "qty": str(c.qty), "cap_applied": c.cap_applied,
                    "skip_reason": c.skip_reason, "sizing": c.sizing}}
        for c in expansion.children]
    for fid in expansion.pause:
        await uow.followers.update(tenant_id, fid, paused=True, paused_reason="drawdown_stop",
                                   updated_at=now)
        events.append({"entity": "follower", "entity_id": fid, "action": "paused",
                       "actor": "orchestrator", "tenant_id": tenant_id,
                       "payload": {"reason": "drawdown_stop", "mo_id": order.mo_id}})
    await uow.audit.append_many(events)
    # as a read would give it back: decimals normalized, as the storage does
    stored = ManagerOrderRecord.from_row({
        **row, "qty": normalize(order.qty),
        "ref_price": None if order.ref_price is None else normalize(order.ref_price)})
    return expansion, stored


def _outbox_items(order: ManagerOrder, expansion: Expansion,
                  followers: Sequence[FollowerRecord], legs: Mapping[str, Sequence[Leg]]
                  ) -> list[tuple[str, dict[str, Any]]]:
    """One outbox row per child to deliver, carrying its body rendered once here (the
    dispatcher adds each attempt's fields) and the trace its deliveries join (the relay and
    dispatcher read it back). A bridged follower's child has no body: it goes to a broker."""
    tp = tracing.current().traceparent()
    part = OrderPart(order)
    by_id = {f.follower_id: f for f in followers}
    items: list[tuple[str, dict[str, Any]]] = []
    for c in expansion.dispatchable:
        payload: dict[str, Any] = {"fo_id": c.fo_id}
        follower = by_id[c.follower_id]
        if not follower.bridged_brokers:
            payload["body"] = part.body(c, follower, order.vault_id,
                                        legs.get(c.fo_id, ())).decode()
        if tp is not None:
            payload["traceparent"] = tp
        items.append((c.fo_id, payload))
    return items


async def submit_manager_order(
    uow: UnitOfWork, *, tenant_id: str, order: ManagerOrder, source: str, actor: str,
    clock: Clock = utcnow, require_instrument: bool = False,
) -> Submitted:
    """Exactly once per (vault, order id): a second submission returns the first result.
    A symbol with no instrument rule at its venue is sized on the built-in default (recorded
    as ``instrument_source: "default"`` in the snapshot), or refused with
    ``unknown_instrument`` when ``require_instrument`` is set."""
    with tracing.current().span("mirror.ingest", {"mo_id": order.mo_id,
                                                  "vault_id": order.vault_id}):
        return await _submit(uow, tenant_id=tenant_id, order=order, source=source,
                             actor=actor, clock=clock, require_instrument=require_instrument)


async def _submit(uow: UnitOfWork, *, tenant_id: str, order: ManagerOrder, source: str,
                  actor: str, clock: Clock, require_instrument: bool) -> Submitted:
    async with uow:
        vault = await uow.vaults.get_for_update(tenant_id, order.vault_id)
        if vault is None:
            raise NotFound(f"vault {order.vault_id} not found", code="vault_not_found")
        existing = await uow.manager_orders.get(tenant_id, order.mo_id)
        if existing is not None:
            if not _same_order(existing, order):
                raise Conflict(f"order id {order.client_order_id} was already used for a "
                               "different order", code="order_id_conflict")
            return Submitted(order, False, None, existing.state.value, existing)
        ensure_vault_accepts_orders(vault.maintenance)
        with tracing.current().span("mirror.expand", {"mo_id": order.mo_id}):
            expansion, record = await _expand_store_row(
                uow, tenant_id=tenant_id, order=order, source=source, actor=actor,
                now=clock(), require_instrument=require_instrument, rails=vault.rails)
        await uow.commit()
    _journal_children(expansion, tenant_id, order.vault_id)
    return Submitted(order, True, expansion, record.state.value, record)


async def sync_follower(
    uow: UnitOfWork, *, tenant_id: str, vault_id: str, follower_id: str, actor: str,
    clock: Clock = utcnow,
) -> list[Expansion]:
    """Size the buys that bring a new follower to the manager's current positions: one
    ``sync`` order per held symbol, sized for this follower alone by the usual rules."""
    out: list[Expansion] = []
    async with uow:
        vault = await uow.vaults.get_for_update(tenant_id, vault_id)
        if vault is None:
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        ensure_vault_accepts_orders(vault.maintenance)
        now = clock()
        for symbol, (qty, venue, price) in sorted((await uow.manager_orders.holdings(
                vault_id)).items()):
            coid = f"sync:{follower_id}:{symbol}"
            order = ManagerOrder(
                mo_id=manager_order_id(vault_id, coid), vault_id=VaultId(vault_id),
                client_order_id=coid, symbol=symbol, venue=venue, side=Side.BUY, qty=qty,
                tif=TimeInForce.DAY, ref_price=price, meta={"sync_for": follower_id})
            if await uow.manager_orders.get(tenant_id, order.mo_id) is not None:
                continue
            out.append(await _expand_and_store(
                uow, tenant_id=tenant_id, order=order, source="sync", actor=actor, now=now,
                only=lambda s: s.follower_id == follower_id, rails=vault.rails))
        await uow.commit()
    for expansion in out:
        _journal_children(expansion, tenant_id, vault_id)
    return out


def _journal_children(expansion: Expansion, tenant_id: str, vault_id: str) -> None:
    """Once committed: the trade log's lines of the new children."""
    observability.children_created(
        observability.journal(), expansion.children, tenant_id=tenant_id,
        vault_id=vault_id, traceparent=tracing.current().traceparent())


def order_from_row(row: ManagerOrderRecord) -> ManagerOrder:
    return ManagerOrder(
        mo_id=ManagerOrderId(row.mo_id), vault_id=VaultId(row.vault_id),
        client_order_id=row.client_order_id, symbol=row.symbol, venue=row.venue,
        side=row.side, qty=row.qty, tif=row.tif, ref_price=row.ref_price,
        closes_position=row.closes_position, meta=dict(row.meta))


async def replay_expansion(uow: UnitOfWork, *, tenant_id: str, mo_id: str) -> Expansion:
    """Re-run sizing from the stored snapshot alone; an auditor compares it with the rows."""
    async with uow:
        row = await uow.manager_orders.get(tenant_id, mo_id)
        if row is None:
            raise NotFound(f"manager order {mo_id} not found", code="manager_order_not_found")
    snap = row.snapshot or {}
    specs = [FollowerSpec.from_json(d) for d in snap.get("followers", [])]
    return expand(order_from_row(row), specs, Instrument.from_json(snap["instrument"]),
                  Snapshot.from_json(snap))
