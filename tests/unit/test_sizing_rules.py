"""Each rule of the mirroring engine beyond the basic floor-and-cap."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.money import Instrument, default_instrument
from vanta.domain.orders import ManagerOrder, Side, TimeInForce
from vanta.domain.overlays import Overlay, OverlayEffect, OverlayKind, effect_of
from vanta.domain.sizing import NavState, OrderContext, Sized, Skipped, size_child

SHARES = default_instrument("AAPL", "nasdaq")


def order(qty: str, side: Side = Side.BUY, *, symbol: str = "AAPL",
          closes: bool = False) -> ManagerOrder:
    return ManagerOrder(ManagerOrderId("mo"), VaultId("v"), "M", symbol, "nasdaq", side, D(qty),
                        TimeInForce.DAY, None, closes)


def spec(**kw: object) -> FollowerSpec:
    base = {"follower_id": FollowerId("f"), "mode": FollowerMode.PROPORTIONAL,
            "scale": D(1), "max_pos_usd": None, "kill_switch": False}
    base.update(kw)
    return FollowerSpec(**base)  # type: ignore[arg-type]


def test_nav_ratio_scale() -> None:
    f = spec(scale_mode=ScaleMode.NAV_RATIO, nav_multiplier=D("1.5"))
    ctx = OrderContext(manager_nav=D(1_000_000))
    nav = NavState(D(50_000), D(50_000), D(50_000))
    r = size_child(order("400"), f, SHARES, ctx, nav=nav)  # 400 * 0.05 * 1.5 = 30
    assert isinstance(r, Sized) and r.qty == D(30)


def test_nav_ratio_without_navs_is_skipped() -> None:
    f = spec(scale_mode=ScaleMode.NAV_RATIO)
    assert size_child(order("10"), f, SHARES, OrderContext()).reason == "nav_unavailable"
    assert size_child(order("10"), f, SHARES, OrderContext(manager_nav=D(1))).reason == \
        "nav_unavailable"


def test_fractional_accounts_get_fractional_shares() -> None:
    whole = size_child(order("7"), spec(scale=D("0.33")), SHARES)
    frac = size_child(order("7"), spec(scale=D("0.33"), fractional=True), SHARES)
    assert whole.qty == D(2) and frac.qty == D("2.31")


def test_below_minimum_fractional_is_skipped() -> None:
    r = size_child(order("1"), spec(scale=D("0.00001"), fractional=True), SHARES)
    assert isinstance(r, Skipped) and r.reason == "below_minimum"


def test_max_order_notional_cuts_and_flags() -> None:
    f = spec(protections=Protections(max_order_usd=D(1000)))
    r = size_child(order("100"), f, SHARES, OrderContext(price=D(190)))
    assert isinstance(r, Sized) and r.qty == D(5) and r.cap_applied


def test_max_order_notional_without_price_is_skipped() -> None:
    f = spec(protections=Protections(max_order_usd=D(1000)))
    assert size_child(order("1"), f, SHARES).reason == "price_unavailable"


@pytest.mark.parametrize(("nav", "peak", "skipped"), [
    (D(90), D(100), True), (D("90.01"), D(100), False), (D(50), D(100), True)])
def test_drawdown_stop_pauses_buys(nav: D, peak: D, skipped: bool) -> None:
    f = spec(protections=Protections(drawdown_stop_pct=D(10)))
    r = size_child(order("10"), f, SHARES, nav=NavState(nav, peak, peak))
    if skipped:
        assert isinstance(r, Skipped) and r.reason == "drawdown_stop" and r.pause
    else:
        assert isinstance(r, Sized)


def test_drawdown_stop_lets_exits_through() -> None:
    f = spec(protections=Protections(drawdown_stop_pct=D(10)))
    r = size_child(order("10", Side.SELL), f, SHARES, held=D(5),
                   nav=NavState(D(50), D(100), D(100)))
    assert isinstance(r, Sized) and r.qty == D(5)


def test_daily_loss_limit() -> None:
    f = spec(protections=Protections(daily_loss_limit_usd=D(500)))
    assert size_child(order("1"), f, SHARES, nav=NavState(D(9500), D(10000), D(10000))
                      ).reason == "daily_loss_limit"
    assert isinstance(size_child(order("1"), f, SHARES,
                                 nav=NavState(D(9501), D(10000), D(10000))), Sized)


def test_allow_and_deny_lists() -> None:
    assert size_child(order("1"), spec(protections=Protections(
        allow_symbols=frozenset({"MSFT"}))), SHARES).reason == "symbol_not_allowed"
    assert size_child(order("1"), spec(protections=Protections(
        deny_symbols=frozenset({"AAPL"}))), SHARES).reason == "symbol_not_allowed"
    assert isinstance(size_child(order("1"), spec(protections=Protections(
        allow_symbols=frozenset({"AAPL"}))), SHARES), Sized)


def test_symbol_map_renames_the_child() -> None:
    r = size_child(order("1"), spec(protections=Protections(symbol_map={"AAPL": "AAPL.US"})),
                   SHARES)
    assert isinstance(r, Sized) and r.symbol == "AAPL.US"


def test_paused_follower_gets_nothing_either_way() -> None:
    assert size_child(order("1"), spec(paused=True), SHARES).reason == "paused"
    assert size_child(order("1", Side.SELL), spec(paused=True), SHARES,
                      held=D(3)).reason == "paused"


def test_partial_exit_sells_same_fraction_of_position() -> None:
    ctx = OrderContext(manager_position=D(100))
    r = size_child(order("25", Side.SELL), spec(scale=D("0.1")), SHARES, ctx, held=D(13))
    assert isinstance(r, Sized) and r.qty == D(3)  # floor(13 * 0.25)


def test_manager_selling_everything_closes_follower_fully() -> None:
    ctx = OrderContext(manager_position=D(100))
    r = size_child(order("100", Side.SELL), spec(scale=D("0.1")), SHARES, ctx, held=D("13.7"))
    assert isinstance(r, Sized) and r.qty == D("13.7")


def test_overlay_boosts_buys_only_for_allowed_followers() -> None:
    ctx = OrderContext(overlay=OverlayEffect(flip=D("1.35"), persona=D(1)))
    plain = size_child(order("100"), spec(), SHARES, ctx)
    boosted = size_child(order("100"), spec(flip_allowed=True), SHARES, ctx)
    assert plain.qty == D(100) and boosted.qty == D(135)


def test_overlay_never_breaks_a_cap() -> None:
    ctx = OrderContext(price=D(100), overlay=OverlayEffect(flip=D(2), persona=D("1.25")))
    f = spec(mode=FollowerMode.CAPPED, max_pos_usd=D(1000), flip_allowed=True,
             persona_allowed=True)
    r = size_child(order("100"), f, SHARES, ctx)
    assert isinstance(r, Sized) and r.qty == D(10) and r.cap_applied


def test_overlay_never_grows_a_sell() -> None:
    ctx = OrderContext(overlay=OverlayEffect(flip=D(2)))
    r = size_child(order("10", Side.SELL), spec(flip_allowed=True), SHARES, ctx, held=D(100))
    assert isinstance(r, Sized) and r.qty == D(10)


def test_persona_table_and_expiry() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    flip = Overlay("a", OverlayKind.FLIP, D("0.35"), None, t0, t0 + timedelta(minutes=30))
    ares = Overlay("b", OverlayKind.PERSONA, D(0), "Ares", t0, t0 + timedelta(minutes=30))
    eff = effect_of([flip, ares], t0 + timedelta(minutes=5))
    assert eff.flip == D("1.35") and eff.persona == D("0.50")
    assert effect_of([flip, ares], t0 + timedelta(minutes=30)) == OverlayEffect()


def test_min_notional_instrument() -> None:
    inst = Instrument("BTC-USD", "coinbase", D("0.00001"), D("0.00001"), D(10))
    r = size_child(order("0.0002", symbol="BTC-USD"), spec(), inst, OrderContext(price=D(30000)))
    assert isinstance(r, Skipped) and r.reason == "below_minimum"  # 6 USD < 10 USD
