"""Performance fees with a high-water mark (HWM), per follower and per billing period.

Inputs
------
A follower's ledger for one period is a time-ordered list of events:

- ``NavObservation(at, nav)``: the account was worth ``nav`` at ``at``;
- ``Deposit(at, amount)`` / ``Withdrawal(at, amount)``: money moved in or out. A flow moves the
  running NAV by its amount at once, so the next ``NavObservation`` is expected to include it.

The state carried between periods is ``FeeState(nav, hwm)``: the NAV at the end of the last
closed period and the mark the account must beat before any fee is due. A new fee agreement
starts with ``FeeState.open(nav)`` (mark = current NAV: nothing earned yet).

The flow-adjusted mark
----------------------
Fees are due only on trading gains, so flows must move the mark together with the NAV:

- a **deposit** raises the mark by its amount (new money starts at its cost);
- a **withdrawal** lowers the mark by its amount (``WithdrawalRule.DOLLAR``, the default).

So within a period ``nav - mark`` changes only with trading P&L, a flow can neither create
nor erase a gain or a loss, and the gain above the mark at period end is never more than the
period's P&L (net of flows). At the close:

    gain      = max(0, nav_end - mark_end)
    fee_exact = rate * gain
    fee       = fee_exact rounded down to the cent (never overcharge; the follower keeps
                the sub-cent remainder, at most one cent per period)
    new mark  = nav_end if gain > 0 else mark_end   # carried into the next period

The mark never resets on its own: after a loss, no fee is due until NAV (flow-adjusted)
climbs back above it, however many periods that takes. Fees are billed, not deducted from
the account (Vanta never holds follower money); if a follower pays a fee out of the account,
record it as a withdrawal, which lowers the mark by the same amount, as it should.

Why dollar-for-dollar on withdrawals (and the alternative)
-----------------------------------------------------------
Managed-account and fund practice (CTA advisory agreements, hedge-fund loss-carryforward
memo accounts) instead shrinks a *loss carryforward* in proportion to the capital withdrawn:
withdrawing 80% of an account that is under water forgives 80% of the loss still to be
recovered (``WithdrawalRule.PROPORTIONAL``: below the mark, ``mark *= (nav - w) / nav``;
above it, dollar-for-dollar, so an accrued gain cannot escape by withdrawing before the close
and depositing again after it). It protects the manager, but it can bill a fee for a period
whose P&L is negative: mark 100, NAV falls to 50, 40 withdrawn (mark 20, NAV 10), NAV
recovers to 30: the period's P&L is -30, yet 10 sits above the proportional mark. Vanta's
rule is that fees follow actual capital outcomes and are shown beside P&L, so the default is
dollar-for-dollar, under which a fee never exceeds ``rate * max(0, period P&L)`` and the sum of
fees over any split of a history equals ``rate * (highest flow-adjusted gain reached at a
period end)``. ``PROPORTIONAL`` is available for agreements that ask for it; it is a term of
the fee agreement and must not change between periods of one follower.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum

from vanta.domain.errors import ValidationFailed
from vanta.domain.money import ZERO, exponent_places, to_decimal

CENT = Decimal("0.01")
MAX_MONEY = Decimal("1e15")
MAX_MONEY_PLACES = 12
# A proportionally scaled mark is rounded *up* to this step: a higher mark never overcharges.
MARK_STEP = Decimal("1e-12")
_PRECISION = 60  # every sum and rate*gain of bounded inputs is exact at this precision


class WithdrawalRule(StrEnum):
    DOLLAR = "dollar"  # the mark drops by the amount withdrawn
    PROPORTIONAL = "proportional"  # below the mark, the mark drops in proportion to capital


def _money(value: object, *, field: str, allow_zero: bool) -> Decimal:
    d = to_decimal(value, field=field, code="invalid_amount")
    if d < 0 or (d == 0 and not allow_zero) or d > MAX_MONEY \
            or exponent_places(d) > MAX_MONEY_PLACES:
        floor = ">= 0" if allow_zero else "> 0"
        raise ValidationFailed(
            f"{field} must be {floor}, <= {MAX_MONEY}, with at most {MAX_MONEY_PLACES} "
            "decimal places", code="invalid_amount", field=field,
        )
    return d


def parse_fee_rate(value: object) -> Decimal:
    rate = to_decimal(value, field="rate", code="invalid_fee_rate")
    if rate < 0 or rate > 1 or exponent_places(rate) > MAX_MONEY_PLACES:
        raise ValidationFailed("rate must be between 0 and 1", code="invalid_fee_rate",
                               field="rate")
    return rate


@dataclass(frozen=True, slots=True)
class NavObservation:
    at: datetime
    nav: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "nav", _money(self.nav, field="nav", allow_zero=True))


@dataclass(frozen=True, slots=True)
class Deposit:
    at: datetime
    amount: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _money(self.amount, field="amount", allow_zero=False))


@dataclass(frozen=True, slots=True)
class Withdrawal:
    at: datetime
    amount: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", _money(self.amount, field="amount", allow_zero=False))


FeeEvent = NavObservation | Deposit | Withdrawal


@dataclass(frozen=True, slots=True)
class FeeState:
    """What one period hands to the next: the closing NAV and the mark to beat."""

    nav: Decimal
    hwm: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "nav", _money(self.nav, field="nav", allow_zero=True))
        object.__setattr__(self, "hwm", _money(self.hwm, field="hwm", allow_zero=True))

    @classmethod
    def open(cls, nav: Decimal) -> FeeState:
        """Start of a fee agreement: the mark is the NAV the follower starts with."""
        return cls(nav=nav, hwm=nav)

    def to_json(self) -> dict[str, str]:
        return {"nav": str(self.nav), "hwm": str(self.hwm)}

    @classmethod
    def from_json(cls, doc: object) -> FeeState:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("nav"), str) \
                or not isinstance(doc.get("hwm"), str):
            raise ValidationFailed("fee state must be {nav, hwm} as decimal strings",
                                   code="invalid_fee_state", field="fee_state")
        return cls(
            nav=to_decimal(doc["nav"], field="fee_state.nav", code="invalid_fee_state"),
            hwm=to_decimal(doc["hwm"], field="fee_state.hwm", code="invalid_fee_state"),
        )


@dataclass(frozen=True, slots=True)
class PeriodResult:
    pnl: Decimal  # nav_end - nav_start - net_flows: trading result of the period
    fee: Decimal  # billed: fee_exact rounded down to the cent
    hwm_before: Decimal  # the mark the period started with
    hwm_after: Decimal  # the mark carried into the next period
    nav_start: Decimal
    nav_end: Decimal
    net_flows: Decimal  # deposits - withdrawals
    deposits: Decimal
    withdrawals: Decimal
    chargeable_gain: Decimal  # max(0, nav_end - flow-adjusted mark)
    fee_exact: Decimal  # rate * chargeable_gain, unrounded
    rate: Decimal
    label: str = ""


def _mark_after_withdrawal(nav: Decimal, hwm: Decimal, amount: Decimal,
                           rule: WithdrawalRule) -> Decimal:
    if rule is WithdrawalRule.PROPORTIONAL and hwm > nav:
        # under water: the loss still to recover shrinks with the capital (nav > 0 here,
        # since 0 < amount <= nav)
        return (hwm * (nav - amount) / nav).quantize(MARK_STEP, rounding=ROUND_CEILING)
    return hwm - amount


def close_period(
    state: FeeState, events: Iterable[FeeEvent], rate: Decimal | str, *,
    rule: WithdrawalRule = WithdrawalRule.DOLLAR, label: str = "",
) -> tuple[PeriodResult, FeeState]:
    """Close one period: its P&L, the fee due on gains above the mark, and the next state.

    ``events`` are the period's events in time order (equal timestamps keep their order);
    an empty period leaves the state unchanged. Raises ``ValidationFailed`` with
    ``events_out_of_order``, ``withdrawal_exceeds_nav`` or ``invalid_fee_rate``.
    """
    fee_rate = parse_fee_rate(rate)
    rule = WithdrawalRule(rule)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        nav, hwm = state.nav, state.hwm
        deposits = withdrawals = ZERO
        last_at: datetime | None = None
        for ev in events:
            if last_at is not None and ev.at < last_at:
                raise ValidationFailed("events must be in time order",
                                       code="events_out_of_order", field="events")
            last_at = ev.at
            if isinstance(ev, NavObservation):
                nav = ev.nav
            elif isinstance(ev, Deposit):
                nav += ev.amount
                hwm += ev.amount
                deposits += ev.amount
            elif isinstance(ev, Withdrawal):
                if ev.amount > nav:
                    raise ValidationFailed(
                        f"withdrawal of {ev.amount} exceeds the account value {nav}",
                        code="withdrawal_exceeds_nav", field="amount",
                    )
                hwm = _mark_after_withdrawal(nav, hwm, ev.amount, rule)
                nav -= ev.amount
                withdrawals += ev.amount
            else:
                raise TypeError(f"not a fee event: {ev!r}")
        net_flows = deposits - withdrawals
        pnl = nav - state.nav - net_flows
        gain = max(ZERO, nav - hwm)
        fee_exact = fee_rate * gain
        fee = fee_exact.quantize(CENT, rounding=ROUND_FLOOR)
        hwm_after = nav if gain > 0 else hwm
    result = PeriodResult(
        pnl=pnl, fee=fee, hwm_before=state.hwm, hwm_after=hwm_after,
        nav_start=state.nav, nav_end=nav, net_flows=net_flows, deposits=deposits,
        withdrawals=withdrawals, chargeable_gain=gain, fee_exact=fee_exact, rate=fee_rate,
        label=label,
    )
    return result, FeeState(nav=nav, hwm=hwm_after)


def close_periods(
    state: FeeState, periods: Iterable[tuple[str, Iterable[FeeEvent]]], rate: Decimal | str,
    *, rule: WithdrawalRule = WithdrawalRule.DOLLAR,
) -> tuple[list[PeriodResult], FeeState]:
    """``close_period`` over consecutive ``(label, events)`` periods."""
    results: list[PeriodResult] = []
    for label, events in periods:
        result, state = close_period(state, events, rate, rule=rule, label=label)
        results.append(result)
    return results, state


@dataclass(frozen=True, slots=True)
class FeeLedgerRow:
    """One period of the follower-facing "P&L vs fees" view, with running totals."""

    label: str
    nav_start: Decimal
    nav_end: Decimal
    net_flows: Decimal
    pnl: Decimal
    fee: Decimal
    pnl_after_fee: Decimal
    hwm_after: Decimal
    to_recover: Decimal  # how far NAV is below the mark: gains before fees resume
    cumulative_pnl: Decimal
    cumulative_fees: Decimal
    cumulative_pnl_after_fees: Decimal

    def as_dict(self) -> dict[str, str]:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


def fee_ledger_rows(results: Iterable[PeriodResult]) -> list[FeeLedgerRow]:
    """Rows for showing each period's P&L beside the fee it produced, in order."""
    rows: list[FeeLedgerRow] = []
    cum_pnl = cum_fees = ZERO
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        for r in results:
            cum_pnl += r.pnl
            cum_fees += r.fee
            rows.append(FeeLedgerRow(
                label=r.label, nav_start=r.nav_start, nav_end=r.nav_end,
                net_flows=r.net_flows, pnl=r.pnl, fee=r.fee, pnl_after_fee=r.pnl - r.fee,
                hwm_after=r.hwm_after, to_recover=max(ZERO, r.hwm_after - r.nav_end),
                cumulative_pnl=cum_pnl, cumulative_fees=cum_fees,
                cumulative_pnl_after_fees=cum_pnl - cum_fees,
            ))
    return rows
