"""Bridged children executed by legs, in the dispatcher's and the confirmer's terms.

The dispatcher's attempt at such a child sends its ready legs (the conversion first) and
answers like a broker submit: a leg at the venue is an acceptance, a refused leg a terminal
refusal, a venue outage a retry on the usual schedule. The confirmer then advances the
legs on every pass: it reads the venue's reports, sends a leg as soon as the one it waits on
has filled (resized after a short conversion) and, once every leg is closed, settles the
child from its asset leg: the fills it got, or the reason it got none.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from vanta.application.clock import Clock, utcnow
from vanta.application.legs import poll_legs, run_ready_legs
from vanta.application.observability import child_moved, fill_recorded
from vanta.application.ports.brokers import (
    BrokerGateway,
    BrokerRejected,
    BrokerUnavailable,
    OrderNotFound,
)
from vanta.application.ports.delivery import SendResult
from vanta.application.ports.journal import NO_JOURNAL, Journal
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.ports.uow import UowFactory
from vanta.domain.legs import Leg, LegState
from vanta.domain.orders import CHILD_ORDER_TABLE, ChildOrderState
from vanta.domain.routing import LegKind

_CLOSED = frozenset({LegState.FILLED, LegState.FAILED, LegState.CANCELLED})
_AT_VENUE = frozenset({LegState.SENT, LegState.PARTIAL, LegState.FILLED})


async def send_legs(uow_factory: UowFactory, gateway: BrokerGateway,
                    child: ChildOrderRecord, clock: Clock = utcnow) -> SendResult:
    """One dispatch attempt of a child executed by legs."""
    start = time.perf_counter()
    legs = await run_ready_legs(uow_factory, gateway, tenant_id=child.tenant_id,
                                fo_id=child.fo_id, clock=clock)
    ms = int((time.perf_counter() - start) * 1000)
    if any(g.state in _AT_VENUE for g in legs):
        return SendResult(200, ms, "legs_accepted", None, broker_ref=legs[0].leg_id)
    if legs and all(g.state in _CLOSED for g in legs):
        failed = next((g for g in legs if g.state is LegState.FAILED), legs[0])
        return SendResult(None, ms, None, f"broker rejected: leg {failed.leg_id}: "
                          f"{failed.reason or 'refused'}", refused=True)
    return SendResult(None, ms, None, "broker unavailable: the first leg goes again")


async def advance_legs(uow_factory: UowFactory, gateway: BrokerGateway,
                       child: ChildOrderRecord, *, clock: Clock = utcnow,
                       journal: Journal = NO_JOURNAL) -> bool:
    """One confirmer pass over an accepted child's legs; True once the child is settled."""
    try:
        legs = await poll_legs(uow_factory, gateway, tenant_id=child.tenant_id,
                               fo_id=child.fo_id, clock=clock)
        if any(g.state is LegState.PLANNED for g in legs):
            legs = await run_ready_legs(uow_factory, gateway, tenant_id=child.tenant_id,
                                        fo_id=child.fo_id, clock=clock)
    except (BrokerUnavailable, BrokerRejected, OrderNotFound):
        return False  # the next pass asks again
    if not legs or not all(g.state in _CLOSED for g in legs):
        return False
    return await _settle(uow_factory, gateway, child, legs, clock, journal)


async def _settle(uow_factory: UowFactory, gateway: BrokerGateway, child: ChildOrderRecord,
                  legs: Sequence[Leg], clock: Clock, journal: Journal) -> bool:
    trade = next(g for g in legs if g.kind is LegKind.TRADE)
    report = await gateway.order_report(trade.leg_id) if trade.filled > 0 else None
    fills = report.fills if report is not None else []
    target = ChildOrderState.CONFIRMED if trade.filled > 0 else ChildOrderState.FAILED
    failed = next((g for g in legs if g.state is not LegState.FILLED), None)
    error = None if failed is None else f"leg {failed.leg_id} {failed.state.value}: " \
        f"{failed.reason or 'no fill'}"
    CHILD_ORDER_TABLE.check(ChildOrderState.ACK, target)
    now = clock()
    async with uow_factory() as uow:
        for f in fills:
            if await uow.fills.add_if_new({"trade_id": f.trade_id, "fo_id": child.fo_id,
                                           "qty": f.qty, "price": f.price, "ts": f.ts,
                                           "recorded_at": now}):
                fill_recorded(journal, child, f.trade_id, f.qty, f.price, f.ts)
                await uow.audit.append(entity="follower_order", entity_id=child.fo_id,
                                       action="fill", actor="confirmer",
                                       tenant_id=child.tenant_id,
                                       payload={"trade_id": f.trade_id, "qty": str(f.qty),
                                                "price": str(f.price), "leg_id": trade.leg_id})
        avg = None if report is None else report.avg_price
        moved = await uow.child_orders.update(
            child.fo_id, expect_state="ack", state=target.value, filled_qty=trade.filled,
            avg_fill_price=avg, last_error=error, updated_at=now)
        if moved:
            child_moved(journal, child, "ack", target.value, error=error,
                        filled_qty=str(trade.filled))
            await uow.audit.append(entity="follower_order", entity_id=child.fo_id,
                                   action=f"broker:{target.value}", actor="confirmer",
                                   tenant_id=child.tenant_id,
                                   payload={"filled_qty": str(trade.filled), "error": error,
                                            "legs": [g.to_json() for g in legs]})
        await uow.commit()
    return moved
