"""Properties of exact sizing, checked against an independent oracle in ``Fraction``s."""

from decimal import Decimal as D
from decimal import localcontext
from fractions import Fraction as F
from math import floor

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.money import Instrument
from vanta.domain.orders import ManagerOrder, Side, TimeInForce
from vanta.domain.overlays import OverlayEffect
from vanta.domain.sizing import NavState, OrderContext, Sized, SizeResult, Skipped, size_child

steps = st.sampled_from([D(1), D(5), D("0.1"), D("0.01"), D("0.0001"), D("0.00001")])
ints = st.integers(1, 5000)
units = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
percents = st.integers(1, 300)  # a multiplier or boost of 0.01 … 3.00


def decimals(lo: str, hi: str, places: int) -> st.SearchStrategy[D]:
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places,
                       allow_nan=False, allow_infinity=False)


def order(qty: D, side: Side = Side.BUY) -> ManagerOrder:
    return ManagerOrder(ManagerOrderId("mo"), VaultId("v"), "M", "X", "v", side, qty,
                        TimeInForce.DAY, None, False)


def follower(*, nav_ratio: bool = True, mult: D = D(1), scale: D = D(1),
             cap: D | None = None, max_order: D | None = None) -> FollowerSpec:
    return FollowerSpec(
        FollowerId("f"), FollowerMode.CAPPED if cap is not None else FollowerMode.PROPORTIONAL,
        scale, cap, False, scale_mode=ScaleMode.NAV_RATIO if nav_ratio else ScaleMode.FIXED,
        nav_multiplier=mult, protections=Protections(max_order_usd=max_order),
        flip_allowed=True)


SELLER = follower(nav_ratio=False)  # exits follow the manager's fraction, whatever the scale


def lots_only(step: D) -> Instrument:
    return Instrument("X", "v", step, step)  # no minimum beyond one lot, no notional minimum


def nav(v: D) -> NavState:
    return NavState(v, v, v)


def floor_to(x: F, step: D) -> F:
    return floor(x / F(step)) * F(step) if x > 0 else F(0)


@settings(max_examples=400, deadline=None)
@given(steps, ints, ints, units, percents, percents, st.integers(1, 1000), st.booleans())
def test_an_exact_whole_number_of_lots_is_received_exactly(
        step: D, a: int, b: int, u: D, x: int, y: int, k: int, nav_ratio: bool) -> None:
    """NAV a·u of b·u (or fixed scale x/100), multiplier x/100, boost y/100: the manager qty is
    chosen so that the exact share is k·a·x·y lots (k·x·y for a fixed scale)."""
    mult = D(x) / 100
    boost = OverlayEffect(flip=D(y) / 100)
    if nav_ratio:
        qty, lots = k * step * b * 10_000, k * a * x * y
        f = follower(mult=mult)
        ctx = OrderContext(manager_nav=b * u, overlay=boost)
        r = size_child(order(qty), f, lots_only(step), ctx, nav=nav(a * u))
    else:
        qty, lots = k * step * 10_000, k * x * y
        f = follower(nav_ratio=False, scale=mult)
        r = size_child(order(qty), f, lots_only(step), OrderContext(overlay=boost))
    assert isinstance(r, Sized), r
    assert r.qty == lots * step


@settings(max_examples=300, deadline=None)
@given(steps, ints, ints, units, st.integers(1, 1000))
def test_an_exact_whole_exit_fraction_is_sold_exactly(
        step: D, a: int, b: int, u: D, c: int) -> None:
    """The manager sells a of (a + b) units·u; the follower holds c·(a + b) lots and sells
    exactly c·a lots."""
    held = c * (a + b) * step
    ctx = OrderContext(manager_position=(a + b) * u)
    r = size_child(order(a * u, Side.SELL), SELLER, lots_only(step), ctx, held=held)
    assert isinstance(r, Sized), r
    assert r.qty == c * a * step


def _outcome(r: SizeResult) -> tuple[str, D]:
    return (r.reason, D(0)) if isinstance(r, Skipped) else ("sized", r.qty)


@settings(max_examples=400, deadline=None)
@given(steps, ints, ints, units, units, percents, st.integers(1, 1000), st.booleans(),
       decimals("0.00001", "100000", 5))
def test_the_result_does_not_depend_on_how_the_ratio_is_written(
        step: D, a: int, b: int, u1: D, u2: D, x: int, k: int, on_a_lot: bool,
        any_qty: D) -> None:
    """a/b × x/100 as NAVs a·u1 of b·u1 with multiplier x/100, or as NAVs a·x·u2 of
    100·b·u2 with multiplier 1; and a/(a + b) as an exit of a·u1 of (a + b)·u1 or of a·u2 of
    (a + b)·u2. Quantities are either arbitrary or chosen to land exactly on a lot, where a
    rounded ratio would show."""
    inst, mult = lots_only(step), D(x) / 100
    qty = k * step * b * 100 if on_a_lot else any_qty
    one = size_child(order(qty), follower(mult=mult), inst,
                     OrderContext(manager_nav=b * u1), nav=nav(a * u1))
    other = size_child(order(qty), follower(), inst,
                       OrderContext(manager_nav=100 * b * u2), nav=nav(a * x * u2))
    assert _outcome(one) == _outcome(other)
    held = k * (a + b) * step if on_a_lot else any_qty
    s1 = size_child(order(a * u1, Side.SELL), SELLER, inst,
                    OrderContext(manager_position=(a + b) * u1), held=held)
    s2 = size_child(order(a * u2, Side.SELL), SELLER, inst,
                    OrderContext(manager_position=(a + b) * u2), held=held)
    assert _outcome(s1) == _outcome(s2)


@settings(max_examples=200, deadline=None)
@given(st.integers(1_000_000_000, 2_000_000_000), decimals("2000001", "100000000", 2))
def test_a_cap_a_hair_below_a_whole_number_of_lots_is_never_exceeded(n: int, px: D) -> None:
    """Room for n lots less 1e-12 USD: the child takes n − 1 lots, never n."""
    with localcontext() as wide:  # the default 28 digits would round the cap back up
        wide.prec = 60
        cap = n * px - D("1E-12")
    r = size_child(order(D(3 * n)), follower(nav_ratio=False, cap=cap), lots_only(D(1)),
                   OrderContext(price=px))
    assert isinstance(r, Sized) and r.cap_applied
    assert r.qty == n - 1
    assert F(r.qty) * F(px) <= F(cap)


@settings(max_examples=500, deadline=None)
@given(steps, decimals("0.00001", "1000000", 5), decimals("1", "10000000", 2),
       decimals("1", "10000000", 2), decimals("0.01", "3", 2), decimals("0.1", "2", 2),
       st.none() | decimals("0.000001", "100000", 6), st.none() | decimals("1", "1000000", 2),
       st.none() | decimals("1", "100000", 2), decimals("0", "10000", 5))
def test_a_buy_is_the_largest_lot_multiple_within_its_share_and_caps(
        step: D, qty: D, mnav: D, fnav: D, mult: D, flip: D, px: D | None, cap: D | None,
        max_order: D | None, held: D) -> None:
    f = follower(mult=mult, cap=cap, max_order=max_order)
    r = size_child(order(qty), f, lots_only(step),
                   OrderContext(price=px, manager_nav=mnav, overlay=OverlayEffect(flip=flip)),
                   held=held, nav=nav(fnav))
    share = F(qty) * F(fnav) / F(mnav) * F(mult) * F(flip)
    bounds = [share]
    if (cap is not None or max_order is not None) and px is None:
        assert isinstance(r, Skipped) and r.reason == "price_unavailable"
        return
    if max_order is not None and px is not None:
        bounds.append(F(max_order) / F(px))
    if cap is not None and px is not None:
        bounds.append(F(cap) / F(px) - F(held))
    expected = floor_to(min(bounds), step)
    if expected == 0:
        assert isinstance(r, Skipped)
        return
    assert isinstance(r, Sized), r
    assert F(r.qty) == expected, "exactly the floor of the tightest bound"
    assert F(r.qty) <= share, "never more than the exact share"
    if cap is not None and px is not None:
        assert (F(held) + F(r.qty)) * F(px) <= F(cap), "never above the position cap"
    if max_order is not None and px is not None:
        assert F(r.qty) * F(px) <= F(max_order), "never above the order limit"
    assert r.cap_applied == (expected < floor_to(share, step))


@settings(max_examples=400, deadline=None)
@given(steps, decimals("0.00001", "100000", 5), decimals("0.00001", "100000", 5),
       decimals("0.00001", "10000", 5))
def test_a_partial_exit_never_sells_more_than_its_fraction_or_the_holdings(
        step: D, sold: D, mpos: D, held: D) -> None:
    r = size_child(order(sold, Side.SELL), SELLER, lots_only(step),
                   OrderContext(manager_position=mpos), held=held)
    if sold >= mpos:
        assert isinstance(r, Sized) and r.qty == held, "closing sells everything"
        return
    expected = floor_to(F(held) * F(sold) / F(mpos), step)
    if expected == 0:
        assert isinstance(r, Skipped) and r.reason == "below_minimum"
        return
    assert isinstance(r, Sized) and F(r.qty) == expected
    assert r.qty <= held
