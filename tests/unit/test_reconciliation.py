"""Reconciliation examples: targets from sizing, drift in qty/USD/bps, fix-ups and the
reasons that block them, stale positions, and the books each position source gives."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from vanta.domain.errors import ValidationFailed
from vanta.domain.followers import FollowerMode, FollowerSpec, Protections
from vanta.domain.ids import FollowerId
from vanta.domain.money import Instrument
from vanta.domain.orders import ChildOrderState, Side
from vanta.domain.reconciliation import (
    BROKER,
    DERIVED,
    REPORTED,
    Book,
    Holding,
    check_threshold,
    plan,
)
from vanta.domain.reconciliation_book import ChildLine, book_flows
from vanta.domain.sizing import NavState

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)
AAPL = Instrument("AAPL", "paper", D(1), D(1))
HOLD = [Holding("AAPL", D(100), "paper", D(200))]
NAV = NavState(D(10_000), D(10_000), D(10_000))


def spec(scale: str = "0.5", **kw: object) -> FollowerSpec:
    base: dict[str, object] = {"follower_id": FollowerId("f1"), "mode": FollowerMode.PROPORTIONAL,
                               "scale": D(scale), "max_pos_usd": None, "kill_switch": False}
    base.update(kw)
    return FollowerSpec(**base)  # type: ignore[arg-type]


def book(held: str, *, s: FollowerSpec | None = None, pending: dict[str, D] | None = None,
         threshold: int = 50, source: str = DERIVED, as_of: datetime | None = None,
         sells: dict[str, D] | None = None) -> Book:
    return Book(s or spec(), {"AAPL": D(held)} if D(held) else {}, source, as_of,
                pending or {}, NAV, threshold, sells or {})


def run(*books: Book, holdings: list[Holding] = HOLD):
    return plan(holdings, list(books), {"AAPL": AAPL}, manager_nav=D(100_000), now=NOW)


def test_a_fully_mirrored_follower_has_zero_drift() -> None:
    p = run(book("50"))
    assert [(d.target, d.qty, d.over) for d in p.drifts] == [(D(50), D(0), False)]
    assert p.fixups == () and p.blocked == ()


def test_missing_shares_are_bought_and_drift_is_reported_in_qty_usd_and_bps() -> None:
    p = run(book("20"))
    d = p.drifts[0]
    assert (d.qty, d.usd, d.bps, d.over) == (D(-30), D(-6000), D("6000.00"), True)
    assert [(f.side, f.qty, f.symbol, f.venue) for f in p.fixups] == \
        [(Side.BUY, D(30), "AAPL", "paper")]


def test_drift_under_the_threshold_orders_nothing() -> None:
    # 1 share of 200 USD on a 10,000 NAV is 200 bps: under 250, over 150
    assert run(book("49", threshold=250)).fixups == ()
    assert [f.qty for f in run(book("49", threshold=150)).fixups] == [D(1)]


def test_in_flight_children_count_as_pending() -> None:
    p = run(book("20", pending={"AAPL": D(30)}))
    assert p.fixups == () and p.drifts[0].qty == 0


def test_a_symbol_the_manager_closed_is_sold_to_zero() -> None:
    p = run(book("7"), holdings=[Holding("AAPL", D(0), "paper", D(200))])
    assert [(f.side, f.qty) for f in p.fixups] == [(Side.SELL, D(7))]


def test_an_excess_is_sold() -> None:
    p = run(book("80"))
    assert [(f.side, f.qty) for f in p.fixups] == [(Side.SELL, D(30))]


def test_a_drift_left_over_by_orders_in_flight_waits_for_them() -> None:
    p = run(book("80", pending={"AAPL": D(-10)}, sells={"AAPL": D(10)}))
    assert p.fixups == () and [b.reason for b in p.blocked] == ["in_flight"]
    gone = [Holding("AAPL", D(0), "paper", D(200))]
    p = run(book("10", pending={"AAPL": D(3)}), holdings=gone)
    assert p.fixups == () and [b.reason for b in p.blocked] == ["in_flight"]


def test_a_buy_is_cut_to_the_cash_left_after_buys_in_flight_and_planned() -> None:
    msft = Instrument("MSFT", "paper", D(1), D(1))
    two = [Holding("AAPL", D(100), "paper", D(200)), Holding("MSFT", D(100), "paper", D(100))]
    b = Book(spec(), {}, DERIVED, None, {"MSFT": D(10)}, NAV, 50, {}, D(9_000))
    p = plan(two, [b], {"AAPL": AAPL, "MSFT": msft}, manager_nav=D(100_000), now=NOW)
    # 9,000 less 1,000 of MSFT in flight leaves 8,000: 40 AAPL at 200 would need all of it
    assert [(f.symbol, f.qty, f.cap_applied) for f in p.fixups] == [("AAPL", D(40), False)]
    b = Book(spec(), {}, DERIVED, None, {}, NAV, 50, {}, D(3_000))
    p = run(b)
    assert [f.qty for f in p.fixups] == [D(15)]
    assert [(x.reason, x.partial) for x in p.blocked] == [("insufficient_cash", True)]


def test_caps_bound_the_target_and_cut_the_fixup() -> None:
    capped = spec(mode=FollowerMode.CAPPED, max_pos_usd=D(4_000))
    assert run(book("0", s=capped)).drifts[0].target == 20
    cut = spec(protections=Protections(max_order_usd=D(2_000)))
    p = run(book("0", s=cut))
    assert [(f.qty, f.cap_applied) for f in p.fixups] == [(D(10), True)]
    assert [(b.reason, b.partial) for b in p.blocked] == [("max_order_usd", True)]


@pytest.mark.parametrize(("s", "reason"), [
    (spec(kill_switch=True), "kill_switch"),
    (spec(paused=True), "paused"),
    (spec(mode=FollowerMode.SHADOW), "shadow"),
    (spec(protections=Protections(deny_symbols=frozenset({"AAPL"}))), "symbol_not_allowed"),
])
def test_blocked_fixups_record_why(s: FollowerSpec, reason: str) -> None:
    p = run(book("20", s=s))
    assert p.fixups == () and [b.reason for b in p.blocked] == [reason]


def test_a_denied_symbol_is_never_sold_even_when_the_manager_closed_it() -> None:
    s = spec(protections=Protections(deny_symbols=frozenset({"AAPL"})))
    p = run(book("7", s=s), holdings=[Holding("AAPL", D(0), "paper", D(200))])
    assert p.fixups == () and [b.reason for b in p.blocked] == ["symbol_not_allowed"]


def test_drawdown_blocks_buys_but_not_sells() -> None:
    s = spec(protections=Protections(drawdown_stop_pct=D(10)))
    down = NavState(D(8_000), D(10_000), D(8_000))
    b = Book(s, {"AAPL": D(10)}, DERIVED, None, {}, down, 50)
    assert [x.reason for x in run(b).blocked] == ["drawdown_stop"]
    b = Book(s, {"AAPL": D(90)}, DERIVED, None, {}, down, 50)
    assert [f.side for f in run(b).fixups] == [Side.SELL]


def test_symbol_map_renames_the_fixup() -> None:
    s = spec(protections=Protections(symbol_map={"AAPL": "AAPL.US"}))
    p = plan(HOLD, [Book(s, {"AAPL.US": D(10)}, DERIVED, None, {}, NAV, 50)], {"AAPL": AAPL},
             manager_nav=D(100_000), now=NOW)
    assert [(f.symbol, f.manager_symbol, f.qty) for f in p.fixups] == \
        [("AAPL.US", "AAPL", D(40))]


def test_below_minimum_is_blocked_but_a_whole_exit_goes_out() -> None:
    big_min = Instrument("AAPL", "paper", D(1), D(5))
    p = plan(HOLD, [book("47")], {"AAPL": big_min}, manager_nav=D(100_000), now=NOW)
    assert [b.reason for b in p.blocked] == ["below_minimum"] and p.fixups == ()
    p = plan([Holding("AAPL", D(0), "paper", D(200))], [book("2")], {"AAPL": big_min},
             manager_nav=D(100_000), now=NOW)
    assert [(f.side, f.qty) for f in p.fixups] == [(Side.SELL, D(2))]


def test_stale_positions_are_a_finding_and_order_nothing() -> None:
    old = NOW - timedelta(hours=1)
    p = run(book("0", source=REPORTED, as_of=old), book("0", source=BROKER, as_of=None))
    assert [f.kind for f in p.findings] == ["stale_positions", "stale_positions"]
    assert [f.detail for f in p.findings] == [
        f"reported positions as of {old.isoformat()} are older than 900 s",
        "no broker positions could be read"]
    assert p.fixups == () and p.drifts == ()
    fresh = run(book("0", source=REPORTED, as_of=NOW - timedelta(minutes=1)))
    assert fresh.findings == () and len(fresh.fixups) == 1


def test_drift_in_bps_is_shown_however_small_the_nav() -> None:
    tiny = NavState(D("0.00000001"), D("0.00000001"), D("0.00000001"))
    huge = [Holding("AAPL", D(1_000_000_000), "paper", D(100_000_000))]
    p = run(Book(spec(), {}, DERIVED, None, {}, tiny, 50), holdings=huge)
    assert p.drifts[0].bps == D("5E+28") and p.drifts[0].over


def test_without_nav_or_price_the_drift_is_blocked() -> None:
    no_nav = Book(spec(), {}, DERIVED, None, {}, None, 50)
    assert [b.reason for b in run(no_nav).blocked] == ["nav_unavailable"]
    p = run(book("0"), holdings=[Holding("AAPL", D(100), "paper", None)])
    assert [b.reason for b in p.blocked] == ["price_unavailable"]


@pytest.mark.parametrize("bad", [-1, 10_001, 1.5, "50", True, None])
def test_thresholds_outside_0_to_10000_bps_are_refused(bad: object) -> None:
    with pytest.raises(ValidationFailed) as e:
        check_threshold(bad)
    assert e.value.code == "invalid_threshold"


def test_thresholds_inside_the_range_are_kept() -> None:
    assert [check_threshold(v) for v in (0, 50, 10_000)] == [0, 50, 10_000]


def _line(state: ChildOrderState, qty: str, filled: str = "0", side: Side = Side.BUY,
          at: datetime = NOW) -> ChildLine:
    return ChildLine("AAPL", side, D(qty), D(filled), state, at)


def test_books_by_source() -> None:
    lines = [_line(ChildOrderState.PENDING, "3"), _line(ChildOrderState.ACK, "10", "4"),
             _line(ChildOrderState.CONFIRMED, "5", "5"), _line(ChildOrderState.DLQ, "7"),
             _line(ChildOrderState.SENT, "2", side=Side.SELL)]
    derived = book_flows(lines, DERIVED)
    assert (derived.pending, derived.pending_sells, derived.derived) == \
        ({"AAPL": D(1)}, {"AAPL": D(2)}, {"AAPL": D(15)})
    broker = book_flows(lines, BROKER)
    assert (broker.pending, broker.derived) == ({"AAPL": D(7)}, {})
    before = NOW - timedelta(minutes=1)
    assert book_flows(lines, REPORTED, before).pending == {"AAPL": D(16)}
    assert book_flows(lines, REPORTED, NOW).pending == {"AAPL": D(1)}
    shadow = [_line(ChildOrderState.SHADOW, "4"),
              _line(ChildOrderState.SHADOW, "1", side=Side.SELL)]
    assert book_flows(shadow, DERIVED).derived == {"AAPL": D(3)}
    assert book_flows(shadow, BROKER).derived == {} and book_flows(shadow, BROKER).pending == {}
