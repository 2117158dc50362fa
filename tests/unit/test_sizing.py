from decimal import Decimal as D

from vanta.domain.followers import FollowerMode, FollowerSpec
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.money import Instrument, default_instrument
from vanta.domain.orders import ManagerOrder, Side, TimeInForce
from vanta.domain.sizing import Sized, Skipped, size_child

SHARES = default_instrument("AAPL", "nasdaq")
BTC = default_instrument("BTC-USD", "coinbase")


def order(qty: str, side: Side = Side.BUY, *, closes: bool = False,
          symbol: str = "AAPL", venue: str = "nasdaq") -> ManagerOrder:
    return ManagerOrder(ManagerOrderId("mo1"), VaultId("v1"), "M-1", symbol, venue, side,
                        D(qty), TimeInForce.DAY, None, closes)


def follower(scale: str, cap: str | None = None, *, kill: bool = False) -> FollowerSpec:
    return FollowerSpec(FollowerId("f1"), FollowerMode.PROPORTIONAL, D(scale),
                        None if cap is None else D(cap), kill)


def test_spec_rule_floor_of_qty_times_scale() -> None:
    r = size_child(order("37"), follower("0.2"), SHARES)
    assert r == Sized(D(7), False, r.trace)  # floor(7.4)


def test_floor_never_rounds_up_even_at_point_nine_nine() -> None:
    r = size_child(order("9.99"), follower("1"), SHARES)
    assert isinstance(r, Sized) and r.qty == D(9)


def test_crypto_lot_step_is_respected() -> None:
    r = size_child(order("0.123456789", symbol="BTC-USD", venue="coinbase"), follower("1"), BTC,
                   price=D("100"))
    assert isinstance(r, Sized) and r.qty == D("0.12345")


def test_cap_cuts_to_largest_lot_that_fits_and_flags_it() -> None:
    r = size_child(order("100"), follower("1", cap="2500"), SHARES, price=D("190"))
    assert isinstance(r, Sized)
    assert r.qty == D(13) and r.cap_applied  # 13 * 190 = 2470 <= 2500 < 14 * 190
    assert r.qty * D(190) <= D(2500)


def test_cap_counts_what_is_already_held() -> None:
    r = size_child(order("100"), follower("1", cap="2500"), SHARES, held=D(10), price=D("190"))
    assert isinstance(r, Sized) and r.qty == D(3) and r.cap_applied


def test_cap_exhausted_is_skipped_not_rounded_up() -> None:
    r = size_child(order("100"), follower("1", cap="2500"), SHARES, held=D(13), price=D("190"))
    assert r == Skipped("cap_exhausted", r.trace)


def test_cap_without_price_is_skipped_never_guessed() -> None:
    r = size_child(order("10"), follower("1", cap="2500"), SHARES)
    assert isinstance(r, Skipped) and r.reason == "price_unavailable"


def test_under_cap_is_untouched() -> None:
    r = size_child(order("5"), follower("1", cap="2500"), SHARES, price=D("190"))
    assert isinstance(r, Sized) and r.qty == D(5) and not r.cap_applied


def test_kill_switch_skips() -> None:
    r = size_child(order("100"), follower("1", kill=True), SHARES)
    assert isinstance(r, Skipped) and r.reason == "kill_switch"


def test_below_lot_step_is_below_minimum() -> None:
    r = size_child(order("3"), follower("0.2"), SHARES)
    assert isinstance(r, Skipped) and r.reason == "below_minimum"


def test_min_notional_skips_small_crypto_orders() -> None:
    r = size_child(order("0.0001", symbol="BTC-USD", venue="coinbase"), follower("1"), BTC,
                   price=D("5000"))  # 0.5 USD < 1 USD minimum
    assert isinstance(r, Skipped) and r.reason == "below_minimum"


def test_min_qty_from_instrument() -> None:
    inst = Instrument("X", "v", D("0.1"), D("1"))
    r = size_child(order("5"), follower("0.15"), inst)  # 0.75 -> 0.7 < 1
    assert isinstance(r, Skipped) and r.reason == "below_minimum"


def test_sell_never_exceeds_held() -> None:
    r = size_child(order("100", Side.SELL), follower("1"), SHARES, held=D(7))
    assert isinstance(r, Sized) and r.qty == D(7)


def test_sell_without_position_is_skipped() -> None:
    r = size_child(order("10", Side.SELL), follower("1"), SHARES)
    assert isinstance(r, Skipped) and r.reason == "no_position"


def test_closing_order_closes_whole_position_even_fractional() -> None:
    r = size_child(order("40", Side.SELL, closes=True), follower("0.33"), SHARES, held=D("13.5"))
    assert isinstance(r, Sized) and r.qty == D("13.5")


def test_partial_sell_is_scaled_and_floored() -> None:
    r = size_child(order("10", Side.SELL), follower("0.5"), SHARES, held=D(20))
    assert isinstance(r, Sized) and r.qty == D(5)


def test_sizing_is_deterministic() -> None:
    a = size_child(order("123.45"), follower("0.37", cap="9999"), SHARES, price=D("12.34"))
    b = size_child(order("123.45"), follower("0.37", cap="9999"), SHARES, price=D("12.34"))
    assert a == b
