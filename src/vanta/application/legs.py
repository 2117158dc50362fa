"""Child legs of a cross-rail child order: planning, sending, fills, and their audit trail.

``plan_child_legs`` stores the router's chosen route as legs (the first ready, the asset leg
waiting on its conversion) and audits the decision, rejected routes and their costs
included. ``run_ready_legs`` sends every ready leg through the follower's broker gateway (the
leg id is the client order id, so a resend never places a second order) and
``poll_legs`` reads the venue's reports back: a conversion that closes releases the legs
waiting on it, resized when it closed short. Every state change is one audit event on the
leg (entity ``child_leg``).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.brokers import (
    BrokerGateway,
    BrokerOrder,
    BrokerRejected,
    BrokerUnavailable,
)
from vanta.application.ports.crossrail import CrossRailUnitOfWork, LegRecord, leg_row
from vanta.domain.errors import Conflict, NotFound
from vanta.domain.legs import Leg, LegState, plan_legs, record_fill, release_after
from vanta.domain.orders import Side
from vanta.domain.routing import RouteDecision, RouteRequest, choose_route, request_json
from vanta.domain.venues import VenueFees

LegUowFactory = Callable[[], CrossRailUnitOfWork]
# Sends of one leg before an outage becomes a failure (the legs waiting on it are cancelled).
MAX_LEG_ATTEMPTS = 5


def _context(req: RouteRequest, fees: VenueFees, lot_step: Decimal,
             min_qty: Decimal) -> dict[str, str]:
    return {"usdc_before": str(req.usdc_balance), "buffer": str(req.buffer),
            "price": str(req.price), "fee_bps": str(fees.taker_bps + fees.spread_bps),
            "lot_step": str(lot_step), "min_qty": str(min_qty),
            "min_order_usd": str(fees.min_order_usd)}


async def _audit(uow: CrossRailUnitOfWork, leg: Leg, action: str, tenant_id: str,
                 actor: str, **extra: Any) -> None:
    await uow.audit.append(entity="child_leg", entity_id=leg.leg_id, action=action,
                           actor=actor, tenant_id=tenant_id,
                           payload={"fo_id": leg.fo_id, **leg.to_json(), **extra})


async def plan_child_legs(uow: CrossRailUnitOfWork, *, tenant_id: str, fo_id: str,
                          request: RouteRequest, models: dict[str, VenueFees],
                          lot_step: Decimal, min_qty: Decimal, actor: str = "router",
                          clock: Clock = utcnow) -> tuple[RouteDecision, list[Leg]]:
    """Route one child and store its legs; without a feasible route nothing is stored but
    the audited decision (so nothing can be dispatched)."""
    decision = choose_route(request, models)
    async with uow:
        if decision.chosen is not None and await uow.legs.for_child(fo_id):
            raise Conflict(f"child {fo_id} already has legs", code="legs_already_planned")
        legs = await record_route(uow, tenant_id=tenant_id, fo_id=fo_id, decision=decision,
                                  request=request, models=models, lot_step=lot_step,
                                  min_qty=min_qty, actor=actor, now=clock())
        await uow.commit()
    return decision, legs


async def record_route(uow: CrossRailUnitOfWork, *, tenant_id: str, fo_id: str,
                       decision: RouteDecision, request: RouteRequest,
                       models: Mapping[str, VenueFees], lot_step: Decimal, min_qty: Decimal,
                       actor: str, now: datetime) -> list[Leg]:
    """Inside the caller's open unit of work: audit the decision and store its legs."""
    legs, rows, events = route_records(tenant_id=tenant_id, fo_id=fo_id, decision=decision,
                                       request=request, models=models, lot_step=lot_step,
                                       min_qty=min_qty, actor=actor, now=now)
    await uow.audit.append_many(events)
    await uow.legs.add_many(rows)
    return legs


def models_json(models: Mapping[str, VenueFees], venues: Iterable[str]
                ) -> dict[str, dict[str, Any]]:
    return {v: models[v].to_json() for v in sorted(set(venues)) if v in models}


def route_records(*, tenant_id: str, fo_id: str, decision: RouteDecision,
                  request: RouteRequest, models: Mapping[str, VenueFees], lot_step: Decimal,
                  min_qty: Decimal, actor: str, now: datetime, with_models: bool = True
                  ) -> tuple[list[Leg], list[dict[str, Any]], list[dict[str, Any]]]:
    """(legs, their rows, the audit events): the decision, with its whole input (the request
    and the fee models it was priced with) so a replay can route again and compare, then one
    ``leg_planned`` event per leg (``with_models`` False: the models are recorded once for
    the whole order, by the caller). Every leg keeps the pricing context (the resize of a
    waiting leg and the follower's USDC estimate both read it)."""
    legs = [] if decision.chosen is None else plan_legs(fo_id, decision)
    events: list[dict[str, Any]] = [{
        "entity": "follower_order", "entity_id": fo_id,
        "action": "route_chosen" if legs else "route_unavailable", "actor": actor,
        "tenant_id": tenant_id,
        "payload": {**decision.to_json(), "request": request_json(request),
                    **({"models": models_json(models, request.venues)} if with_models
                       else {})}}]
    rows: list[dict[str, Any]] = []
    if legs:
        ctx = _context(request, models[legs[0].venue], lot_step, min_qty)
        rows = [leg_row(g, tenant_id=tenant_id, at=now, context=ctx) for g in legs]
        events += [{"entity": "child_leg", "entity_id": g.leg_id, "action": "leg_planned",
                    "actor": actor, "tenant_id": tenant_id,
                    "payload": {"fo_id": g.fo_id, **g.to_json()}} for g in legs]
    return legs, rows, events


async def _load(uow: CrossRailUnitOfWork, tenant_id: str, leg_id: str) -> LegRecord:
    rec = await uow.legs.get(tenant_id, leg_id)
    if rec is None:
        raise NotFound(f"leg {leg_id} not found", code="leg_not_found")
    return rec


async def _save(uow: CrossRailUnitOfWork, before: Leg, after: Leg, clock: Clock) -> None:
    ok = await uow.legs.update(after.leg_id, expect_state=before.state.value,
                               state=after.state.value, amount=after.amount,
                               filled=after.filled, attempts=after.attempts,
                               reason=after.reason, updated_at=clock())
    if not ok:
        raise Conflict(f"leg {after.leg_id} moved meanwhile", code="leg_state_conflict")


async def mark_sent(uow: CrossRailUnitOfWork, *, tenant_id: str, leg_id: str,
                    actor: str = "dispatcher", clock: Clock = utcnow) -> Leg:
    async with uow:
        leg = (await _load(uow, tenant_id, leg_id)).leg()
        sent = leg.move(LegState.SENT, attempts=leg.attempts + 1)
        await _save(uow, leg, sent, clock)
        await _audit(uow, sent, "leg_sent", tenant_id, actor)
        await uow.commit()
    return sent


async def settle_leg(uow: CrossRailUnitOfWork, *, tenant_id: str, leg_id: str,
                     filled: Decimal | None, closed: bool, failed: str | None = None,
                     retry: bool = False, actor: str = "dispatcher",
                     clock: Clock = utcnow) -> list[Leg]:
    """Apply one outcome of a sent leg (a fill report, a refusal, or a retry) and release
    or cancel the legs waiting on it. Returns the child's legs afterwards."""
    async with uow:
        rec = await _load(uow, tenant_id, leg_id)
        leg = rec.leg()
        if retry:
            moved = leg.move(LegState.PLANNED)
        elif failed is not None:
            moved = leg.move(LegState.FAILED, reason=failed)
        else:
            assert filled is not None
            if filled == leg.filled and not closed:
                return [r.leg() for r in await uow.legs.for_child(rec.fo_id)]
            moved = record_fill(leg, filled, closed=closed)
        await _save(uow, leg, moved, clock)
        await _audit(uow, moved, {LegState.FAILED: "leg_failed", LegState.PLANNED:
                                  "leg_retry"}.get(moved.state, "leg_fill"), tenant_id, actor)
        rows = await uow.legs.for_child(rec.fo_id)
        legs = [moved if r.leg_id == leg_id else r.leg() for r in rows]
        if moved.state in (LegState.FILLED, LegState.FAILED):
            legs = await _release(uow, rows, legs, moved, tenant_id, actor, clock)
        await uow.commit()
    return legs


async def _release(uow: CrossRailUnitOfWork, rows: builtins.list[LegRecord],
                   legs: list[Leg], closed: Leg, tenant_id: str, actor: str,
                   clock: Clock) -> list[Leg]:
    out = list(legs)
    for i, rec in enumerate(rows):
        if rec.after_idx != closed.index or rec.state != LegState.WAITING.value:
            continue
        ctx = {k: Decimal(str(v)) for k, v in (rec.context or {}).items()}
        is_convert_back = rec.kind == "convert"
        [moved] = release_after(
            [rec.leg()], closed, usdc_before=ctx["usdc_before"], buffer=ctx["buffer"],
            price=ctx["price"], fee_bps=ctx["fee_bps"], lot_step=ctx["lot_step"],
            min_qty=ctx["min_order_usd"] if is_convert_back else ctx["min_qty"])
        await _save(uow, rec.leg(), moved, clock)
        action = "leg_released" if moved.state is LegState.PLANNED else "leg_cancelled"
        resized = moved.amount != rec.amount
        await _audit(uow, moved, action, tenant_id, actor,
                     resized_from=str(rec.amount) if resized else None)
        out[i] = moved
    return out


async def run_ready_legs(uow_factory: LegUowFactory, gateway: BrokerGateway, *,
                         tenant_id: str, fo_id: str, clock: Clock = utcnow) -> list[Leg]:
    """Send the child's ready legs; a refusal fails the leg (and cancels what waits on it),
    an outage puts it back to ready for the next run, up to ``MAX_LEG_ATTEMPTS`` sends."""
    async with uow_factory() as uow:
        ready = [r for r in await uow.legs.for_child(fo_id)
                 if r.tenant_id == tenant_id and r.state == LegState.PLANNED.value]
    set_price = getattr(gateway, "set_price", None)
    for rec in ready:
        if set_price is not None and rec.context:
            # the paper venue marks each pair at the price the route was planned with
            set_price(rec.pair, Decimal(1) if rec.kind == "convert"
                      else Decimal(str(rec.context["price"])))
        sent = await mark_sent(uow_factory(), tenant_id=tenant_id, leg_id=rec.leg_id,
                               clock=clock)
        try:
            await gateway.submit(BrokerOrder(sent.leg_id, sent.pair, Side(sent.side),
                                             sent.amount))
        except BrokerRejected as e:
            await settle_leg(uow_factory(), tenant_id=tenant_id, leg_id=sent.leg_id,
                             filled=None, closed=True, failed=e.code or "rejected",
                             clock=clock)
        except BrokerUnavailable as e:
            spent = sent.attempts >= MAX_LEG_ATTEMPTS
            await settle_leg(uow_factory(), tenant_id=tenant_id, leg_id=sent.leg_id,
                             filled=None, closed=spent, retry=not spent,
                             failed=f"retries_exhausted: {e.code or 'unavailable'}" if spent
                             else None, clock=clock)
    async with uow_factory() as uow:
        return [r.leg() for r in await uow.legs.for_child(fo_id)]


async def poll_legs(uow_factory: LegUowFactory, gateway: BrokerGateway, *, tenant_id: str,
                    fo_id: str, clock: Clock = utcnow) -> list[Leg]:
    """Read the venue's report of each sent leg and apply it."""
    async with uow_factory() as uow:
        working = [r for r in await uow.legs.for_child(fo_id) if r.tenant_id == tenant_id
                   and r.state in (LegState.SENT.value, LegState.PARTIAL.value)]
    for rec in working:
        report = await gateway.order_report(rec.leg_id)
        if report.is_terminal and report.filled_qty == 0:
            await settle_leg(uow_factory(), tenant_id=tenant_id, leg_id=rec.leg_id,
                             filled=None, closed=True, failed=report.reason or
                             report.status.value, clock=clock)
        elif report.filled_qty > rec.filled or report.is_terminal:
            await settle_leg(uow_factory(), tenant_id=tenant_id, leg_id=rec.leg_id,
                             filled=min(report.filled_qty, rec.amount),
                             closed=report.is_terminal, clock=clock)
    async with uow_factory() as uow:
        return [r.leg() for r in await uow.legs.for_child(fo_id)]
