"""Child legs: planning from a route, fills, the asset leg waiting on its conversion and
being resized when the conversion closes short."""

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vanta.domain.errors import InvalidTransition, ValidationFailed
from vanta.domain.legs import (
    LegState,
    plan_legs,
    record_fill,
    release_after,
    resized_trade_qty,
)
from vanta.domain.routing import LegKind, RouteDecision, RouteRequest, choose_route
from vanta.domain.venues import VenueFees

MODEL = {"cb": VenueFees("cb", D(0), D(20), D(5), D(10), D(1), 100,
                         frozenset({"BTC-USDC", "USDC-USD"}), 2)}
STEP = D("0.00001")


def buy_plan(usdc: str = "0", buffer: str = "1000") -> RouteDecision:
    return choose_route(RouteRequest("BTC", "buy", D("0.5"), D(40000), D(100000), D(usdc),
                                     D(buffer), 1000, ("cb",)), MODEL)


def test_plan_marks_the_asset_leg_waiting_on_the_conversion() -> None:
    convert, trade = plan_legs("fo-1", buy_plan())
    assert (convert.kind, convert.state, convert.amount) == (LegKind.CONVERT, LegState.PLANNED,
                                                             D(21050))
    assert (trade.kind, trade.state, trade.after, trade.leg_id) == (
        LegKind.TRADE, LegState.WAITING, 0, "fo-1.1")


def test_no_plan_without_a_feasible_route() -> None:
    with pytest.raises(ValidationFailed):
        plan_legs("fo-1", RouteDecision(None, ()))


def test_full_conversion_releases_the_planned_quantity() -> None:
    legs = plan_legs("fo-1", buy_plan())
    conv = record_fill(legs[0].move(LegState.SENT), D(21050), closed=False)
    assert conv.state is LegState.FILLED
    out = release_after([conv, legs[1]], conv, usdc_before=D(0), buffer=D(1000),
                        price=D(40000), fee_bps=D(25), lot_step=STEP, min_qty=STEP)
    assert (out[1].state, out[1].amount) == (LegState.PLANNED, D("0.5"))


def test_partial_conversion_resizes_the_asset_leg_and_keeps_the_buffer() -> None:
    legs = plan_legs("fo-1", buy_plan())
    conv = record_fill(legs[0].move(LegState.SENT), D(5000), closed=False)
    assert conv.state is LegState.PARTIAL
    conv = record_fill(conv, D(11025), closed=True)  # the rest was cancelled at the venue
    out = release_after([conv, legs[1]], conv, usdc_before=D(0), buffer=D(1000),
                        price=D(40000), fee_bps=D(25), lot_step=STEP, min_qty=STEP)
    # 10,025 spendable / (40,000 × 1.0025) = 0.25
    assert (out[1].state, out[1].amount) == (LegState.PLANNED, D("0.25"))


def test_a_failed_or_tiny_conversion_cancels_the_asset_leg() -> None:
    legs = plan_legs("fo-1", buy_plan())
    failed = legs[0].move(LegState.SENT).move(LegState.FAILED)
    out = release_after(legs, failed, usdc_before=D(0), buffer=D(1000), price=D(40000),
                        fee_bps=D(25), lot_step=STEP, min_qty=STEP)
    assert (out[1].state, out[1].reason) == (LegState.CANCELLED, "predecessor_failed")
    tiny = record_fill(legs[0].move(LegState.SENT), D(1000), closed=True)
    out = release_after(legs, tiny, usdc_before=D(0), buffer=D(1000), price=D(40000),
                        fee_bps=D(25), lot_step=STEP, min_qty=STEP)
    assert (out[1].state, out[1].reason) == (LegState.CANCELLED, "resized_below_minimum")


def test_fills_may_not_shrink_or_overshoot_and_states_follow_the_table() -> None:
    leg = plan_legs("fo-1", buy_plan())[0].move(LegState.SENT)
    with pytest.raises(ValidationFailed):
        record_fill(leg, D(999999), closed=False)
    part = record_fill(leg, D(10), closed=False)
    with pytest.raises(ValidationFailed):
        record_fill(part, D(5), closed=False)
    with pytest.raises(InvalidTransition):
        plan_legs("fo-1", buy_plan())[1].move(LegState.SENT)  # still waiting


@settings(max_examples=300, deadline=None)
@given(st.decimals(min_value=D(0), max_value=D(50000), places=2),
       st.decimals(min_value=D(0), max_value=D(50000), places=2),
       st.decimals(min_value=D(0), max_value=D(5000), places=2),
       st.decimals(min_value=D("0.01"), max_value=D(90000), places=2),
       st.decimals(min_value=D(0), max_value=D(200), places=2))
def test_resized_leg_never_spends_into_the_buffer(before: D, converted: D, buffer: D,
                                                  price: D, fee: D) -> None:
    qty = resized_trade_qty(planned_qty=D(1000), usdc_before=before, converted=converted,
                            buffer=buffer, price=price, fee_bps=fee, lot_step=STEP)
    cost = qty * price * (10000 + fee) / 10000
    assert qty >= 0 and cost <= max(D(0), before + converted - buffer)
    # and it is the largest such lot: one more step would spend into the buffer
    if qty < 1000:
        more = (qty + STEP) * price * (10000 + fee)
        assert more > (before + converted - buffer) * 10000
