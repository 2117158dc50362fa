"""Cross-rail children at expansion: which children become legs, and with what balances.

A child becomes a plan of legs when all of these hold:

* the vault has the crypto rail and the order's asset is a crypto asset some venue's fee
  model trades against USD or USDC (``BTC``, ``BTC-USD``, ``BTC/USDC``...);
* the follower is funded in USD: its broker binding gives it the fiat rail (the paper venue,
  or a webhook follower, which executes itself), and it is linked to at least one venue able
  to route it. A binding with the crypto rail only (Coinbase) holds its own crypto funding,
  and one with the fiat rail only and no crypto venue (Alpaca, Tradier) has nothing to route
  through: both keep the plain child order.

Every such child gets the chosen route's legs, even when that is a single asset leg (enough
USDC above the buffer, or the direct USD pair was cheapest), so a routed child is always
executed the same way: by its legs. Without a feasible route the child is skipped
(``no_feasible_route``) and the audited decision says why; nothing is dispatched for it.

Balances are what the platform knows at expansion, with no call to the venue: USD is the
follower's last recorded NAV (an upper bound on its cash; without a NAV the venue's own
check is the only limit) and USDC is estimated from the follower's earlier legs: what
conversions bought, less what USDC-quoted buys spent, plus what sells received, counting
legs still open at their planned amounts so two orders in a row never top the buffer up
twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from vanta.application.crossrail import DEFAULT_LATENCY_BUDGET_MS, effective_buffer, fee_models
from vanta.application.legs import models_json, route_records
from vanta.application.ports.legs import LegRecord
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.ids import FollowerId
from vanta.domain.legs import Leg, LegState
from vanta.domain.mirroring import Expansion, Snapshot
from vanta.domain.money import MAX_PRICE, MAX_QTY, ZERO, Instrument
from vanta.domain.orders import ChildOrder, ChildOrderState, ManagerOrder
from vanta.domain.routing import (
    NO_FEASIBLE_ROUTE,
    LegKind,
    RouteDecision,
    RouteRequest,
    choose_route,
    pair_known,
)
from vanta.domain.venues import (
    FIAT,
    STABLECOIN,
    VenueFees,
    bps_of,
    follower_rails,
    linked_venues,
)

_CLOSED: Final = frozenset({LegState.FILLED.value, LegState.FAILED.value,
                            LegState.CANCELLED.value})
ROUTES_PRICED: Final = "routes_priced"
# No recorded NAV: the balance is not known here, the venue refuses what it cannot pay.
UNKNOWN_BALANCE: Final = MAX_QTY * MAX_PRICE


def crypto_base(symbol: str) -> str:
    """``BTC``, ``BTC-USD``, ``BTC/USDC`` → ``BTC``."""
    s = symbol.strip().upper().replace("/", "-")
    for quote in (f"-{STABLECOIN}", f"-{FIAT}"):
        s = s.removesuffix(quote)
    return s


def usdc_estimate(legs: Iterable[LegRecord]) -> Decimal:
    """The follower's USDC as its legs leave it (never below zero)."""
    total = ZERO
    for g in legs:
        amount = g.filled if g.state in _CLOSED else g.amount
        if not amount:
            continue
        if g.kind == LegKind.CONVERT.value:
            total += amount if g.side == "buy" else -amount
        elif g.pair.endswith(f"-{STABLECOIN}") and g.context:
            notional = amount * Decimal(str(g.context["price"]))
            fee = bps_of(notional, Decimal(str(g.context["fee_bps"])))
            total += notional - fee if g.side == "sell" else -(notional + fee)
    return max(total, ZERO)


def routes_through_legs(follower: FollowerRecord) -> bool:
    broker = (follower.bridged_brokers or {}).get("broker")
    name = None if broker is None else str(broker)
    return "fiat" in follower_rails(name) and bool(linked_venues(name))


@dataclass(frozen=True, slots=True)
class ChildRoute:
    fo_id: str
    request: RouteRequest
    decision: RouteDecision


@dataclass(frozen=True, slots=True)
class RoutedExpansion:
    expansion: Expansion
    routes: tuple[ChildRoute, ...]
    models: Mapping[str, VenueFees]
    instrument: Instrument
    mo_id: str


async def route_children(uow: UnitOfWork, *, rails: Mapping[str, object],
                         order: ManagerOrder, expansion: Expansion,
                         followers: Sequence[FollowerRecord], instrument: Instrument,
                         snapshot: Snapshot) -> RoutedExpansion:
    """Route every dispatchable child that needs legs (reads only; nothing is written)."""
    empty = RoutedExpansion(expansion, (), {}, instrument, order.mo_id)
    if not rails.get("crypto") or not expansion.dispatchable:
        return empty
    models = await fee_models(uow)
    base = crypto_base(order.symbol)
    price = snapshot.price if snapshot.price is not None else order.ref_price
    if not pair_known(base, list(models.values())):
        return empty
    by_id = {f.follower_id: f for f in followers}
    routed = [c for c in expansion.children if c.state is ChildOrderState.PENDING
              and c.follower_id in by_id and routes_through_legs(by_id[c.follower_id])]
    if not routed:
        return empty
    tenant_id = by_id[routed[0].follower_id].tenant_id
    # one read each for every routed follower: their legs (the USDC estimate) and buffers
    legs_of = await uow.legs.for_followers(tenant_id, [c.follower_id for c in routed])
    vault_buffer = await uow.buffers.get(tenant_id, "vault", order.vault_id)
    wanted = {c.fo_id for c in routed}
    routes: list[ChildRoute] = []
    children: list[ChildOrder] = []
    for child in expansion.children:
        follower = by_id.get(child.follower_id)
        if child.fo_id not in wanted or follower is None:
            children.append(child)
            continue
        buffer = vault_buffer if vault_buffer is not None else ZERO
        if follower.plan_id == "institutional":  # the override, when it has one
            buffer, _ = await effective_buffer(uow, follower)
        req = _request(follower, base, child, price, snapshot,
                       usdc_estimate(legs_of.get(follower.follower_id, ())), buffer)
        decision = choose_route(req, models) if req is not None else RouteDecision(None, ())
        routes.append(ChildRoute(child.fo_id, req or _placeholder(base, child), decision))
        children.append(child if decision.chosen is not None else child._replace(
            state=ChildOrderState.SKIPPED, skip_reason=NO_FEASIBLE_ROUTE))
    return RoutedExpansion(replace(expansion, children=tuple(children)), tuple(routes),
                           models, instrument, order.mo_id)


def _placeholder(base: str, child: ChildOrder) -> RouteRequest:
    # no reference price: nothing can be priced; the audit names the request anyway
    return RouteRequest(base, child.side.value, child.qty, Decimal(1), ZERO, ZERO, ZERO, 0,
                        ())


def _request(follower: FollowerRecord, base: str, child: ChildOrder, price: Decimal | None,
             snapshot: Snapshot, usdc: Decimal, buffer: Decimal) -> RouteRequest | None:
    if price is None or price <= 0:
        return None
    nav = snapshot.navs.get(FollowerId(follower.follower_id))
    broker = (follower.bridged_brokers or {}).get("broker")
    return RouteRequest(base, child.side.value, child.qty, price,
                        UNKNOWN_BALANCE if nav is None else max(nav.nav, ZERO), usdc, buffer,
                        DEFAULT_LATENCY_BUDGET_MS,
                        linked_venues(None if broker is None else str(broker)))


async def store_routes(uow: UnitOfWork, routed: RoutedExpansion, *, tenant_id: str,
                       now: datetime) -> dict[str, list[Leg]]:
    """Once the children are written: the audited decisions and the legs, in the same
    transaction, so a child is never stored without the legs it is executed by. The fee
    models the routes were priced with are recorded once, on the order (``routes_priced``).
    Returns each routed child's legs."""
    if not routed.routes:
        return {}
    ins = routed.instrument
    rows: list[dict[str, Any]] = []
    venues = {v for r in routed.routes for v in r.request.venues}
    events: list[dict[str, Any]] = [{
        "entity": "manager_order", "entity_id": routed.mo_id, "action": ROUTES_PRICED,
        "actor": "router", "tenant_id": tenant_id,
        "payload": {"models": models_json(routed.models, venues)}}]
    legs: dict[str, list[Leg]] = {}
    for r in routed.routes:
        legs[r.fo_id], more_rows, more_events = route_records(
            tenant_id=tenant_id, fo_id=r.fo_id, decision=r.decision, request=r.request,
            models=routed.models, lot_step=ins.lot_step, min_qty=ins.min_qty, actor="router",
            now=now, with_models=False)
        rows += more_rows
        events += more_events
    await uow.audit.append_many(events)
    await uow.legs.add_many(rows)
    return legs
