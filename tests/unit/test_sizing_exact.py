"""Exact proportional sizing: the share is floored once, from the exact value.

Each regression example here was sized one lot short (or skipped) when sizing divided first and
rounded the quotient to 28 digits. Also the two policies of sizing version 2 (dust exits, cap
precedence) and replaying orders stored under version 1.
"""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from fractions import Fraction

import pytest

from vanta.domain import sizing_v1
from vanta.domain.errors import Conflict
from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import (
    Instrument,
    default_instrument,
    floor_ratio,
    floor_to_step,
    normalize,
    ratio_str,
)
from vanta.domain.orders import ChildOrderState, ManagerOrder, Side, TimeInForce
from vanta.domain.overlays import Overlay, OverlayEffect, OverlayKind, effect_of
from vanta.domain.sizing import SIZING_VERSION, NavState, OrderContext, Sized, Skipped, size_child

SHARES = default_instrument("AAPL", "nasdaq")
BTC = default_instrument("BTC-USD", "coinbase")  # 0.00001 lots, 1 USD minimum notional


def order(qty: str, side: Side = Side.BUY, *, closes: bool = False,
          symbol: str = "AAPL") -> ManagerOrder:
    return ManagerOrder(ManagerOrderId("mo"), VaultId("v"), "M", symbol, "nasdaq", side, D(qty),
                        TimeInForce.DAY, None, closes)


def spec(fid: str = "f", **kw: object) -> FollowerSpec:
    base: dict[str, object] = {"follower_id": FollowerId(fid), "mode": FollowerMode.PROPORTIONAL,
                               "scale": D(1), "max_pos_usd": None, "kill_switch": False}
    base.update(kw)
    return FollowerSpec(**base)  # type: ignore[arg-type]


def nav(v: str) -> NavState:
    return NavState(D(v), D(v), D(v))


NAV_RATIO = spec(scale_mode=ScaleMode.NAV_RATIO)


# -- NAV-ratio buys -------------------------------------------------------------------------

@pytest.mark.parametrize(("manager_nav", "manager_qty", "follower_nav", "expected"), [
    ("3000", "30", "1000", "10"),  # ratio exactly 1/3: was 9
    ("2100", "21", "700", "7"),  # was 6
    ("3", "3", "1", "1"),  # was below_minimum
])
def test_nav_ratio_buy_receives_its_exact_whole_share(
        manager_nav: str, manager_qty: str, follower_nav: str, expected: str) -> None:
    r = size_child(order(manager_qty), NAV_RATIO, SHARES,
                   OrderContext(manager_nav=D(manager_nav)), nav=nav(follower_nav))
    assert isinstance(r, Sized), r
    assert r.qty == D(expected) and str(r.qty) == expected


def test_nav_ratio_with_multiplier_and_overlay_is_floored_once() -> None:
    # 1,000/3,000 × 3 × 0.6 (flip) of 15 = 9 exactly; each factor rounded first gave 8
    f = spec(scale_mode=ScaleMode.NAV_RATIO, nav_multiplier=D(3), flip_allowed=True)
    ctx = OrderContext(manager_nav=D(3000), overlay=OverlayEffect(flip=D("0.6")))
    r = size_child(order("15"), f, SHARES, ctx, nav=nav("1000"))
    assert isinstance(r, Sized) and r.qty == D(9)
    assert r.trace["scale"] == "1" and r.trace["overlay"] == "0.6" and D(r.trace["raw"]) == 9


def test_trace_shows_the_exact_ratio_not_a_rounded_one() -> None:
    r = size_child(order("30"), NAV_RATIO, SHARES, OrderContext(manager_nav=D(3000)),
                   nav=nav("1000"))
    assert r.trace["scale"] == "1000/3000" and r.trace["raw"] == "10"


# -- partial exits --------------------------------------------------------------------------

@pytest.mark.parametrize(("manager_pos", "manager_sells", "held", "expected"), [
    ("30", "10", "3", "1"),  # a third of 3: was below_minimum, leaving the follower over-exposed
    ("24.3", "8.1", "3", "1"),
    ("30", "20", "3", "2"),  # two thirds: was 1
])
def test_partial_exit_sells_the_exact_fraction(
        manager_pos: str, manager_sells: str, held: str, expected: str) -> None:
    r = size_child(order(manager_sells, Side.SELL), spec(), SHARES,
                   OrderContext(manager_position=D(manager_pos)), held=D(held))
    assert isinstance(r, Sized), r
    assert r.qty == D(expected)
    assert r.trace["exit"] == f"fraction {manager_sells}/{manager_pos}"


def test_partial_exit_is_still_floored() -> None:
    r = size_child(order("10", Side.SELL), spec(), SHARES,
                   OrderContext(manager_position=D(30)), held=D(5))
    assert isinstance(r, Sized) and r.qty == D(1)  # 5/3 = 1.67 → 1


# -- caps and minimum notional ------------------------------------------------------------

def test_cap_is_never_exceeded_when_the_room_is_a_hair_below_a_lot() -> None:
    # room = (5e16 − 1e-12) / 5e7 = 1e9 − 2e-20 lots: rounded to 28 digits it was exactly 1e9,
    # and the child took the position 1e-12 USD over the cap.
    px = D(50_000_000)
    cap = D("49999999999999999.999999999999")
    f = spec(mode=FollowerMode.CAPPED, max_pos_usd=cap)
    r = size_child(order("2000000000"), f, SHARES, OrderContext(price=px))
    assert isinstance(r, Sized) and r.cap_applied
    assert r.qty == D(999_999_999)
    assert r.qty * px <= cap


def test_min_notional_check_is_exact() -> None:
    # 0.123456789012 × 12,345,678.123456789042 = 1,524,157.779297668892857187606504 exactly;
    # the minimum is that product rounded up at 28 digits, which the notional used to equal.
    qty, px = D("0.123456789012"), D("12345678.123456789042")
    minimum = D("1524157.779297668892857187607")
    inst = Instrument("X", "v", D("1E-12"), D("1E-12"), minimum)
    r = size_child(order(str(qty), symbol="X"), spec(), inst, OrderContext(price=px))
    assert isinstance(r, Skipped) and r.reason == "below_minimum"
    at_minimum = Instrument("X", "v", D("1E-12"), D("1E-12"),
                            D("1524157.779297668892857187606504"))
    assert isinstance(size_child(order(str(qty), symbol="X"), spec(), at_minimum,
                                 OrderContext(price=px)), Sized)


# -- policy: a buy that floors to zero with no cap room ------------------------------------

def test_zero_share_and_no_cap_room_reports_cap_exhausted() -> None:
    f = spec(mode=FollowerMode.CAPPED, max_pos_usd=D(1000), scale=D("0.01"))
    r = size_child(order("10"), f, SHARES, OrderContext(price=D(100)), held=D(10))
    assert isinstance(r, Skipped) and r.reason == "cap_exhausted"  # 0.1 → 0, and cap full


def test_zero_share_with_cap_room_is_below_minimum() -> None:
    f = spec(mode=FollowerMode.CAPPED, max_pos_usd=D(1000), scale=D("0.01"))
    r = size_child(order("10"), f, SHARES, OrderContext(price=D(100)), held=D(2))
    assert isinstance(r, Skipped) and r.reason == "below_minimum"


def test_order_limit_below_one_lot_reports_cap_exhausted() -> None:
    f = spec(scale=D("0.01"), protections=Protections(max_order_usd=D(50)))
    r = size_child(order("10"), f, SHARES, OrderContext(price=D(100)))
    assert isinstance(r, Skipped) and r.reason == "cap_exhausted"


def test_expand_flags_cap_for_the_cap_exhausted_zero_share() -> None:
    f = spec(mode=FollowerMode.CAPPED, max_pos_usd=D(1000), scale=D("0.01"))
    e = expand(order("10"), [f], SHARES, Snapshot(D(100), {FollowerId("f"): D(10)}))
    (c,) = e.children
    assert c.skip_reason == "cap_exhausted" and c.cap_applied and c.qty == 0


# -- policy: whole-position exits below the venue minimum (dust) ---------------------------

def test_closing_dust_is_sent_and_marked() -> None:
    r = size_child(order("1", Side.SELL, closes=True, symbol="BTC-USD"), spec(), BTC,
                   OrderContext(price=D(30000)), held=D("0.00002"))  # 0.60 USD < 1 USD
    assert isinstance(r, Sized) and r.qty == D("0.00002")
    assert r.trace["dust"] == "below_min_notional"


def test_full_exit_by_quantity_below_min_qty_is_sent_and_marked() -> None:
    inst = Instrument("X", "v", D(1), D(5))
    r = size_child(order("30", Side.SELL, symbol="X"), spec(), inst,
                   OrderContext(manager_position=D(30)), held=D(3))
    assert isinstance(r, Sized) and r.qty == D(3) and r.trace["dust"] == "below_min_qty"


def test_exit_limited_to_held_dust_is_sent_and_marked() -> None:
    r = size_child(order("5", Side.SELL, symbol="BTC-USD"), spec(), BTC,
                   OrderContext(price=D(100)), held=D("0.005"))  # 0.50 USD
    assert isinstance(r, Sized) and r.qty == D("0.005")
    assert r.trace["exit"] == "limited_to_held" and r.trace["dust"] == "below_min_notional"


def test_ordinary_close_is_not_marked() -> None:
    r = size_child(order("1", Side.SELL, closes=True, symbol="BTC-USD"), spec(), BTC,
                   OrderContext(price=D(30000)), held=D("0.1"))
    assert isinstance(r, Sized) and "dust" not in r.trace


def test_partial_exit_below_minimum_is_still_skipped() -> None:
    r = size_child(order("10", Side.SELL, symbol="BTC-USD"), spec(), BTC,
                   OrderContext(price=D(100), manager_position=D(30)), held=D("0.02"))
    assert isinstance(r, Skipped) and r.reason == "below_minimum"  # 0.00666 × 100 < 1 USD


# -- versions and replay ------------------------------------------------------------------

def _regression_snapshot(**kw: object) -> Snapshot:
    return Snapshot(None, {}, D(3000), navs={FollowerId("f"): nav("1000")},
                    **kw)  # type: ignore[arg-type]


def test_new_snapshots_record_the_current_sizing_version() -> None:
    snap = _regression_snapshot()
    assert SIZING_VERSION == 2
    assert snap.to_json()["sizing_version"] == 2
    assert Snapshot.from_json(snap.to_json()) == snap


def test_snapshot_stored_before_versions_replays_with_version_1() -> None:
    stored = _regression_snapshot().to_json()
    del stored["sizing_version"]  # what every order stored before this change looks like
    old = Snapshot.from_json(stored)
    assert old.sizing_version == 1
    (child,) = expand(order("30"), [NAV_RATIO], SHARES, old).children
    assert child.qty == D(9), "the child the order was given under version 1 is reproduced"
    (fixed,) = expand(order("30"), [NAV_RATIO], SHARES, _regression_snapshot()).children
    assert fixed.qty == D(10)


def test_version_1_keeps_its_old_reason_for_zero_share_without_cap_room() -> None:
    f = spec(mode=FollowerMode.CAPPED, max_pos_usd=D(1000), scale=D("0.01"))
    snap = Snapshot(D(100), {FollowerId("f"): D(10)}, sizing_version=1)
    (c,) = expand(order("10"), [f], SHARES, snap).children
    assert c.skip_reason == "below_minimum" and not c.cap_applied


def test_version_1_keeps_its_rounded_overlay_product() -> None:
    # a 31-digit flip factor: version 1 multiplied flip × persona at 28 digits
    eff = OverlayEffect(flip=D("1.000000000000000000000000000001"), persona=D("0.75"))
    f = spec(flip_allowed=True, persona_allowed=True)
    assert sizing_v1._boost(OrderContext(overlay=eff), f) == D("0.7500000000000000000000000000")
    assert eff.for_follower(True, True) == D("0.75000000000000000000000000000075")


def test_unknown_sizing_version_is_refused() -> None:
    with pytest.raises(Conflict) as e:
        expand(order("30"), [NAV_RATIO], SHARES, _regression_snapshot(sizing_version=99))
    assert e.value.code == "unknown_sizing_version"


def test_expand_children_are_dispatchable_under_version_2() -> None:
    e = expand(order("30"), [NAV_RATIO], SHARES, _regression_snapshot())
    assert [c.state for c in e.children] == [ChildOrderState.PENDING]


# -- exact helpers and boosts ---------------------------------------------------------------

def test_floor_ratio_and_floor_to_step_are_exact() -> None:
    assert floor_ratio(D(30000), D(3000), D(1)) == 10
    assert floor_ratio(D(1), D(3), D("0.0001")) == D("0.3333")
    assert floor_ratio(D(0), D(3), D(1)) == 0 and floor_ratio(D(-1), D(3), D(1)) == 0
    just_below = D("9.99999999999999999999999999999")  # 30 digits
    assert floor_to_step(just_below, D(1)) == 9
    assert floor_to_step(just_below, D(2)) == 8
    with pytest.raises(ValueError):
        floor_ratio(D(1), D(0), D(1))


def test_ratio_str_and_normalize_never_round() -> None:
    assert ratio_str(D(1), D(4)) == "0.25" and ratio_str(D(2), D(6)) == "2/6"
    long = D("12345678901234567890123456789.5")
    assert normalize(long) == long and str(normalize(D("1E+2"))) == "100"


def test_overlay_boosts_are_exact() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    amp = D("0.1234567890123456789012345678901")  # 31 digits: 28-digit arithmetic rounds it
    flip = Overlay("a", OverlayKind.FLIP, amp, "Apollo", t0, t0 + timedelta(minutes=5))
    ares = Overlay("b", OverlayKind.PERSONA, D(0), "Ares", t0, t0 + timedelta(minutes=5))
    one_flip = (1 + Fraction(amp)) * Fraction("1.25")
    assert Fraction(flip.multiplier()) == one_flip
    eff = effect_of([flip, flip, ares], t0)
    assert Fraction(eff.flip) == one_flip ** 2 and eff.persona == D("0.5")
    assert Fraction(eff.for_follower(True, True)) == one_flip ** 2 / 2
