"""The cross-rail router: how a USD-funded follower buys or sells a crypto asset.

For every venue the follower is linked to, two routes are priced:

* ``direct``: the ``BASE-USD`` pair, paid from (or paid into) the USD balance;
* ``via_usdc``: the ``BASE-USDC`` pair. A buy spends the USDC balance; when that is short,
  one conversion leg first tops USDC up so that, after the order, exactly the stablecoin
  buffer is left (never one conversion per order). A sell keeps its USDC proceeds up to the
  buffer and converts only the excess back to USD.

A route is feasible when its venue trades the pair (and converts, when a conversion is
needed), the order reaches the venue's minimum, its legs fit the latency budget (legs run one
after the other, each at the venue's estimate) and it spends no more USD than the balance.
The cheapest feasible route wins; ties go to the lower latency, then fewer legs, then
``direct`` before ``via_usdc``, then the venue name, so the same inputs always give the same
route whatever order the venues were listed in. Every other route is kept with its cost or
the reason it was ruled out, so a choice can be explained and replayed.

Money is exact: USDC is taken at par with USD and fees are basis points of an exact product.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any, Final

from vanta.domain.errors import ValidationFailed
from vanta.domain.money import ZERO, normalize
from vanta.domain.venues import CONVERSION_PAIR, FIAT, STABLECOIN, VenueFees, bps_of


class RouteKind(StrEnum):
    DIRECT = "direct"
    VIA_USDC = "via_usdc"


class LegKind(StrEnum):
    CONVERT = "convert"  # USD -> USDC (buy side) or USDC -> USD (sell proceeds)
    TRADE = "trade"


_KIND_RANK: Final = {RouteKind.DIRECT: 0, RouteKind.VIA_USDC: 1}
NO_FEASIBLE_ROUTE: Final = "no_feasible_route"


@dataclass(frozen=True, slots=True)
class PlannedLeg:
    """One step of a route. ``amount``: USDC bought (or sold) for a conversion, base-asset
    quantity for a trade. ``after``: index of the leg that must fill first."""

    kind: LegKind
    venue: str
    pair: str
    side: str
    amount: Decimal
    after: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind.value, "venue": self.venue, "pair": self.pair,
                "side": self.side, "amount": str(normalize(self.amount)), "after": self.after}


@dataclass(frozen=True, slots=True)
class RouteRequest:
    base: str  # the asset, e.g. BTC
    side: str  # buy | sell
    qty: Decimal
    price: Decimal  # reference price in USD per unit
    usd_balance: Decimal
    usdc_balance: Decimal
    buffer: Decimal  # stablecoin buffer to keep in USDC
    latency_budget_ms: int
    venues: tuple[str, ...]  # the venues the follower is linked to

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValidationFailed("side must be buy or sell", code="invalid_side",
                                   field="side")
        if self.qty <= 0 or self.price <= 0:
            raise ValidationFailed("qty and price must be positive", code="invalid_number",
                                   field="qty" if self.qty <= 0 else "price")
        if self.buffer < 0:
            raise ValidationFailed("the stablecoin buffer may not be negative",
                                   code="invalid_buffer", field="buffer")
        if self.usd_balance < 0 or self.usdc_balance < 0:
            raise ValidationFailed("balances may not be negative", code="invalid_balance",
                                   field="usd_balance" if self.usd_balance < 0
                                   else "usdc_balance")
        if self.latency_budget_ms < 0:
            raise ValidationFailed("latency_budget_ms may not be negative",
                                   code="invalid_latency_budget", field="latency_budget_ms")


def request_json(req: RouteRequest) -> dict[str, Any]:
    """The router's whole input, so a stored decision can be recomputed."""
    return {"base": req.base, "side": req.side, "qty": str(req.qty), "price": str(req.price),
            "usd_balance": str(req.usd_balance), "usdc_balance": str(req.usdc_balance),
            "buffer": str(req.buffer), "latency_budget_ms": req.latency_budget_ms,
            "venues": list(req.venues)}


def request_from_json(d: Mapping[str, Any]) -> RouteRequest:
    return RouteRequest(str(d["base"]), str(d["side"]), Decimal(d["qty"]), Decimal(d["price"]),
                        Decimal(d["usd_balance"]), Decimal(d["usdc_balance"]),
                        Decimal(d["buffer"]), int(d["latency_budget_ms"]),
                        tuple(str(v) for v in d["venues"]))


@dataclass(frozen=True, slots=True)
class RouteCost:
    venue: str
    kind: RouteKind
    pair: str
    legs: tuple[PlannedLeg, ...]
    cost_usd: Decimal | None  # fees + spread + conversion fees; None: not priceable
    latency_ms: int
    usd_spent: Decimal
    usdc_after: Decimal
    version: int | None  # the fee model's version it was priced with
    reason: str | None = None  # why it is not feasible (None: feasible)

    @property
    def feasible(self) -> bool:
        return self.reason is None

    def key(self) -> tuple[Any, ...]:
        """The fixed tie-break order (lower is better)."""
        return (0 if self.feasible else 1, self.cost_usd if self.cost_usd is not None else ZERO,
                self.latency_ms, len(self.legs), _KIND_RANK[self.kind], self.venue)

    def to_json(self) -> dict[str, Any]:
        return {"venue": self.venue, "kind": self.kind.value, "pair": self.pair,
                "legs": [leg.to_json() for leg in self.legs],
                "cost_usd": None if self.cost_usd is None else str(normalize(self.cost_usd)),
                "latency_ms": self.latency_ms, "usd_spent": str(normalize(self.usd_spent)),
                "usdc_after": str(normalize(self.usdc_after)), "fee_model_version":
                self.version, "feasible": self.feasible, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class RouteDecision:
    chosen: RouteCost | None
    rejected: tuple[RouteCost, ...]

    @property
    def reason(self) -> str | None:
        return None if self.chosen is not None else NO_FEASIBLE_ROUTE

    def to_json(self) -> dict[str, Any]:
        return {"chosen": None if self.chosen is None else self.chosen.to_json(),
                "rejected": [r.to_json() for r in self.rejected], "reason": self.reason}


def _trade_fee(fees: VenueFees, notional: Decimal) -> Decimal:
    return bps_of(notional, fees.taker_bps + fees.spread_bps)


def _buy(req: RouteRequest, fees: VenueFees, kind: RouteKind) -> RouteCost:
    notional = req.qty * req.price
    fee = _trade_fee(fees, notional)
    if kind is RouteKind.DIRECT:
        pair = f"{req.base}-{FIAT}"
        trade = PlannedLeg(LegKind.TRADE, fees.venue, pair, "buy", req.qty)
        return _finish(req, fees, kind, pair, (trade,), fee, notional + fee, req.usdc_balance)
    pair = f"{req.base}-{STABLECOIN}"
    needed = notional + fee
    if req.usdc_balance >= needed:  # the buffer covers it: no conversion
        trade = PlannedLeg(LegKind.TRADE, fees.venue, pair, "buy", req.qty)
        return _finish(req, fees, kind, pair, (trade,), fee, ZERO, req.usdc_balance - needed)
    # one leg tops up to the buffer; never below the venue's minimum order
    convert = max(needed - req.usdc_balance + req.buffer, fees.min_order_usd)
    conv_fee = bps_of(convert, fees.conversion_bps or ZERO)
    legs = (PlannedLeg(LegKind.CONVERT, fees.venue, CONVERSION_PAIR, "buy", convert),
            PlannedLeg(LegKind.TRADE, fees.venue, pair, "buy", req.qty, after=0))
    if not fees.converts or not fees.trades(CONVERSION_PAIR):
        return _finish(req, fees, kind, pair, legs, fee + conv_fee, convert + conv_fee,
                       req.usdc_balance + convert - needed, "venue_cannot_convert")
    return _finish(req, fees, kind, pair, legs, fee + conv_fee, convert + conv_fee,
                   req.usdc_balance + convert - needed)


def _sell(req: RouteRequest, fees: VenueFees, kind: RouteKind) -> RouteCost:
    notional = req.qty * req.price
    fee = _trade_fee(fees, notional)
    if kind is RouteKind.DIRECT:
        pair = f"{req.base}-{FIAT}"
        trade = PlannedLeg(LegKind.TRADE, fees.venue, pair, "sell", req.qty)
        return _finish(req, fees, kind, pair, (trade,), fee, ZERO, req.usdc_balance)
    pair = f"{req.base}-{STABLECOIN}"
    proceeds = notional - fee
    trade = PlannedLeg(LegKind.TRADE, fees.venue, pair, "sell", req.qty)
    keep = min(proceeds, max(ZERO, req.buffer - req.usdc_balance))
    excess = proceeds - keep
    if excess <= 0 or excess < fees.min_order_usd or not fees.converts or \
            not fees.trades(CONVERSION_PAIR):
        # proceeds stay in USDC: nothing beyond the buffer, or nothing the venue can convert
        return _finish(req, fees, kind, pair, (trade,), fee, ZERO, req.usdc_balance + proceeds)
    back = PlannedLeg(LegKind.CONVERT, fees.venue, CONVERSION_PAIR, "sell", excess, after=0)
    return _finish(req, fees, kind, pair, (trade, back),
                   fee + bps_of(excess, fees.conversion_bps or ZERO), ZERO,
                   req.usdc_balance + keep)


def _finish(req: RouteRequest, fees: VenueFees, kind: RouteKind, pair: str,
            legs: tuple[PlannedLeg, ...], cost: Decimal, usd_spent: Decimal,
            usdc_after: Decimal, reason: str | None = None) -> RouteCost:
    latency = fees.latency_ms * len(legs)
    if not fees.trades(pair):
        reason = "pair_not_traded"
    elif reason is None:
        if req.qty * req.price < fees.min_order_usd:
            reason = "below_min_order"
        elif latency > req.latency_budget_ms:
            reason = "over_latency_budget"
        elif usd_spent > req.usd_balance:
            reason = "insufficient_usd"
    return RouteCost(fees.venue, kind, pair, legs, cost, latency, usd_spent, usdc_after,
                     fees.version, reason)


def candidate_routes(req: RouteRequest, models: Mapping[str, VenueFees]) -> list[RouteCost]:
    """Every route of every linked venue, priced (unknown venues are listed as such)."""
    price = _buy if req.side == "buy" else _sell
    out: list[RouteCost] = []
    for venue in sorted(set(req.venues)):
        fees = models.get(venue)
        for kind in RouteKind:
            if fees is None:
                out.append(RouteCost(venue, kind, "", (), None, 0, ZERO, req.usdc_balance,
                                     None, "no_fee_model"))
            else:
                out.append(price(req, fees, kind))
    return out


def choose_route(req: RouteRequest, models: Mapping[str, VenueFees]) -> RouteDecision:
    """The cheapest feasible route under the fixed tie-break, and every other one priced."""
    ranked = sorted(candidate_routes(req, models), key=RouteCost.key)
    if not ranked or not ranked[0].feasible:
        return RouteDecision(None, tuple(ranked))
    return RouteDecision(ranked[0], tuple(ranked[1:]))


def pair_known(base: str, models: Sequence[VenueFees]) -> bool:
    """Whether any venue trades ``base`` against USD or USDC."""
    pairs = {f"{base}-{FIAT}", f"{base}-{STABLECOIN}"}
    return any(pairs & m.pairs for m in models)
