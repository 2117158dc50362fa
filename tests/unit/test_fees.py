"""Performance fees with a flow-adjusted high-water mark: worked examples and invariants."""

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import ROUND_FLOOR
from decimal import Decimal as D
from itertools import pairwise

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from vanta.domain.errors import ValidationFailed
from vanta.domain.fees import (
    CENT,
    Deposit,
    FeeEvent,
    FeeState,
    NavObservation,
    PeriodResult,
    Withdrawal,
    WithdrawalRule,
    close_period,
    close_periods,
    fee_ledger_rows,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
History = tuple[D, list[FeeEvent]]
RATE = D("0.2")


def at(hours: int) -> datetime:
    return T0 + timedelta(hours=hours)


def nav(h: int, value: str) -> NavObservation:
    return NavObservation(at(h), D(value))


def dep(h: int, value: str) -> Deposit:
    return Deposit(at(h), D(value))


def wd(h: int, value: str) -> Withdrawal:
    return Withdrawal(at(h), D(value))


# ---------------------------------------------------------------- worked examples


def test_gain_above_the_mark_is_charged_and_raises_the_mark() -> None:
    r, s = close_period(FeeState.open(D(1000)), [nav(1, "1100"), nav(2, "1200")], RATE)
    assert (r.pnl, r.fee, r.hwm_before, r.hwm_after) == (D(200), D(40), D(1000), D(1200))
    assert (r.nav_start, r.nav_end, r.net_flows) == (D(1000), D(1200), D(0))
    assert s == FeeState(nav=D(1200), hwm=D(1200))


def test_after_a_loss_no_fee_until_the_mark_is_regained() -> None:
    results, state = close_periods(FeeState.open(D(1000)), [
        ("jan", [nav(1, "800")]),
        ("feb", [nav(2, "950")]),  # +150 but still under the mark
        ("mar", [nav(3, "1100")]),  # only the 100 above 1000 is charged
        ("apr", [nav(4, "1050")]),
        ("may", [nav(5, "1100")]),  # back at the mark exactly: nothing
    ], RATE)
    assert [r.fee for r in results] == [D(0), D(0), D(20), D(0), D(0)]
    assert [r.hwm_after for r in results] == [D(1000), D(1000), D(1100), D(1100), D(1100)]
    assert state == FeeState(nav=D(1100), hwm=D(1100))


def test_deposit_moves_nav_and_mark_together() -> None:
    state = FeeState(nav=D(800), hwm=D(1000))  # 200 under water
    r, s = close_period(state, [dep(1, "200"), nav(2, "1200")], RATE)
    assert r.fee == 0 and r.pnl == 200 and r.net_flows == 200
    assert s.hwm == D(1200)  # the 200 loss still has to be recovered
    r, s = close_period(s, [nav(3, "1300")], RATE)
    assert r.fee == D(20) and s.hwm == D(1300)


def test_withdrawal_above_the_mark_does_not_let_the_gain_escape() -> None:
    # +500, then 1000 withdrawn before the close: the 500 gain is still charged
    r, s = close_period(FeeState.open(D(1000)), [nav(1, "1500"), wd(2, "1000")], RATE)
    assert (r.nav_end, r.pnl, r.net_flows, r.chargeable_gain, r.fee) == \
        (D(500), D(500), D(-1000), D(500), D(100))
    assert s == FeeState(nav=D(500), hwm=D(500))
    # depositing it back does not create or erase anything
    r, s = close_period(s, [dep(3, "1000")], RATE)
    assert r.fee == 0 and s == FeeState(nav=D(1500), hwm=D(1500))


def test_withdrawal_below_the_mark_dollar_rule_keeps_the_loss_to_recover() -> None:
    r, s = close_period(FeeState.open(D(1000)), [nav(1, "500"), wd(2, "250")], RATE)
    assert s == FeeState(nav=D(250), hwm=D(750))  # still 500 to recover
    r, s = close_period(s, [nav(3, "700")], RATE)
    assert r.fee == 0


def test_withdrawal_below_the_mark_proportional_rule_scales_the_loss() -> None:
    rule = WithdrawalRule.PROPORTIONAL
    r, s = close_period(FeeState.open(D(1000)), [nav(1, "500"), wd(2, "250")], RATE, rule=rule)
    assert s == FeeState(nav=D(250), hwm=D(500))  # half the capital left: half the loss
    r, s = close_period(s, [nav(3, "700")], RATE, rule=rule)
    assert (r.chargeable_gain, r.fee) == (D(200), D(40))


def test_proportional_rule_can_charge_in_a_losing_period_dollar_rule_cannot() -> None:
    """The trade-off documented in the module: why DOLLAR is the default."""
    events = [nav(1, "50"), wd(2, "40"), nav(3, "30")]
    prop, _ = close_period(FeeState.open(D(100)), events, RATE,
                           rule=WithdrawalRule.PROPORTIONAL)
    dollar, _ = close_period(FeeState.open(D(100)), events, RATE)
    assert prop.pnl == dollar.pnl == D(-30)
    assert (prop.chargeable_gain, prop.fee) == (D(10), D(2))  # mark 100 -> 20, NAV 30
    assert (dollar.chargeable_gain, dollar.fee) == (D(0), D(0))  # mark 100 -> 60


def test_fee_is_rounded_down_to_the_cent() -> None:
    r, _ = close_period(FeeState.open(D(100)), [nav(1, "110.07")], D("0.15"))
    assert (r.fee_exact, r.fee) == (D("1.5105"), D("1.51"))
    r, _ = close_period(FeeState.open(D(100)), [nav(1, "100.04")], RATE)
    assert (r.fee_exact, r.fee) == (D("0.008"), D(0))
    r, _ = close_period(FeeState.open(D(100)), [nav(1, "100.09")], D("0.3333"))
    assert r.fee == D("0.02") and r.fee_exact == D("0.029997")


def test_empty_period_changes_nothing() -> None:
    state = FeeState(nav=D(900), hwm=D(1000))
    r, s = close_period(state, [], RATE)
    assert s == state and r.pnl == 0 and r.fee == 0


def test_zero_and_full_rate() -> None:
    r, _ = close_period(FeeState.open(D(100)), [nav(1, "150")], D(0))
    assert r.fee == 0 and r.chargeable_gain == 50
    r, _ = close_period(FeeState.open(D(100)), [nav(1, "150")], "1")
    assert r.fee == 50


def test_withdrawing_everything() -> None:
    r, s = close_period(FeeState.open(D(100)), [nav(1, "120"), wd(2, "120")], RATE)
    assert (r.nav_end, r.pnl, r.fee) == (D(0), D(20), D(4))
    assert s == FeeState(nav=D(0), hwm=D(0))


def test_equal_timestamps_keep_their_order() -> None:
    r, _ = close_period(FeeState.open(D(100)), [dep(1, "50"), nav(1, "160")], RATE)
    assert r.pnl == 10 and r.fee == 2


@pytest.mark.parametrize(("events", "code"), [
    ([nav(2, "100"), nav(1, "110")], "events_out_of_order"),
    ([wd(1, "100.01")], "withdrawal_exceeds_nav"),
    ([nav(1, "10"), wd(2, "20")], "withdrawal_exceeds_nav"),
])
def test_bad_ledgers_are_refused(events: list[FeeEvent], code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        close_period(FeeState.open(D(100)), events, RATE)
    assert e.value.code == code


@pytest.mark.parametrize("rate", [D("-0.1"), D("1.01"), "x", None, True, D("NaN")])
def test_bad_rates_are_refused(rate: object) -> None:
    with pytest.raises(ValidationFailed) as e:
        close_period(FeeState.open(D(100)), [], rate)  # type: ignore[arg-type]
    assert e.value.code == "invalid_fee_rate"


@pytest.mark.parametrize("make", [
    lambda: NavObservation(T0, D(-1)),
    lambda: Deposit(T0, D(0)),
    lambda: Withdrawal(T0, D(-5)),
    lambda: Deposit(T0, D("1e16")),
    lambda: Deposit(T0, D("0.0000000000001")),
    lambda: NavObservation(T0, D("Infinity")),
    lambda: FeeState(nav=D(1), hwm=D(-1)),
])
def test_bad_amounts_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(ValidationFailed) as e:
        make()
    assert e.value.code == "invalid_amount"


def test_fee_state_json_round_trip() -> None:
    s = FeeState(nav=D("1234.56"), hwm=D("2000.000000000001"))
    assert FeeState.from_json(s.to_json()) == s
    for bad in (None, {"nav": 1, "hwm": "2"}, {"nav": "x", "hwm": "1"}):
        with pytest.raises(ValidationFailed):
            FeeState.from_json(bad)


def test_fee_ledger_rows_show_pnl_beside_fees() -> None:
    results, _ = close_periods(FeeState.open(D(1000)), [
        ("q1", [nav(1, "1200")]),
        ("q2", [nav(2, "1100"), dep(3, "500")]),
        ("q3", [nav(4, "1800")]),
    ], RATE)
    rows = fee_ledger_rows(results)
    assert [r.label for r in rows] == ["q1", "q2", "q3"]
    assert [r.pnl for r in rows] == [D(200), D(-100), D(200)]
    assert [r.fee for r in rows] == [D(40), D(0), D(20)]
    assert [r.pnl_after_fee for r in rows] == [D(160), D(-100), D(180)]
    assert [r.to_recover for r in rows] == [D(0), D(100), D(0)]
    assert [r.cumulative_pnl for r in rows] == [D(200), D(100), D(300)]
    assert [r.cumulative_fees for r in rows] == [D(40), D(40), D(60)]
    assert rows[-1].cumulative_pnl_after_fees == D(240)
    assert rows[1].net_flows == D(500)
    assert rows[0].as_dict()["fee"] == "40.00" and set(rows[0].as_dict()) >= {"label", "pnl"}
    assert fee_ledger_rows([]) == []


# ---------------------------------------------------------------- properties

def cents(n: int) -> D:
    return D(n).scaleb(-2)


@st.composite
def histories(draw: st.DrawFn, *, losses: bool = True, flows: bool = True,
              max_steps: int = 12) -> History:
    """A starting NAV and a valid ledger in cents: NAV never negative, withdrawals covered.

    NAV moves by a percentage of itself (so drops below the mark, withdrawals under water
    and recoveries are all common); withdrawals take a share of the account.
    """
    nav_c = start_c = draw(st.integers(1, 10**8) | st.just(0))
    events: list[FeeEvent] = []
    kinds = ["nav", "dep", "wd"] if flows else ["nav"]
    for i in range(draw(st.integers(0, max_steps))):
        kind = draw(st.sampled_from(kinds))
        if kind == "nav":
            pct = draw(st.integers(0 if losses else 100, 250))
            nav_c = nav_c * pct // 100 if nav_c else draw(st.integers(0, 10**6))
            events.append(NavObservation(at(i), cents(nav_c)))
        elif kind == "dep":
            amount = draw(st.integers(1, 10**7))
            nav_c += amount
            events.append(Deposit(at(i), cents(amount)))
        elif nav_c > 0:
            amount = max(1, nav_c * draw(st.integers(1, 100)) // 100)
            nav_c -= amount
            events.append(Withdrawal(at(i), cents(amount)))
    return cents(start_c), events


rates = st.sampled_from([D(0), D("0.1"), D("0.15"), D("0.2"), D("0.3333"), D("0.5"), D(1)])
rules = st.sampled_from(list(WithdrawalRule))


@st.composite
def splits(draw: st.DrawFn, events: Sequence[FeeEvent]) -> list[list[FeeEvent]]:
    """The same history cut into consecutive periods (some possibly empty)."""
    cuts = sorted(draw(st.sets(st.integers(0, len(events)), max_size=5)))
    bounds = [0, *cuts, len(events)]
    return [list(events[a:b]) for a, b in pairwise(bounds)]


def run(start: D, periods: list[list[FeeEvent]], rate: D,
        rule: WithdrawalRule = WithdrawalRule.DOLLAR) -> list[PeriodResult]:
    results, _ = close_periods(FeeState.open(start),
                               [(str(i), p) for i, p in enumerate(periods)], rate, rule=rule)
    return results


def gains_above_initial_mark(start: D, events: Sequence[FeeEvent]) -> list[D]:
    """Flow-adjusted gain over the starting mark after each event: NAV - (start + net flows)."""
    nav_v, flows, out = start, D(0), []
    for ev in events:
        if isinstance(ev, NavObservation):
            nav_v = ev.nav
        elif isinstance(ev, Deposit):
            nav_v, flows = nav_v + ev.amount, flows + ev.amount
        else:
            nav_v, flows = nav_v - ev.amount, flows - ev.amount
        out.append(nav_v - start - flows)
    return out


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(), rate=rates)
def test_a_gain_is_never_charged_twice(data: st.DataObject, hist: History, rate: D) -> None:
    start, events = hist
    periods = data.draw(splits(events))
    results = run(start, periods, rate)
    xs = [D(0), *gains_above_initial_mark(start, events)]
    ends = [xs[sum(len(p) for p in periods[: k + 1])] for k in range(len(periods))]
    peak_at_closes = max(D(0), *ends)
    # exactly the highest flow-adjusted gain reached at a close is ever charged ...
    assert sum(r.fee_exact for r in results) == rate * peak_at_closes
    # ... which is never more than the highest gain reached at all
    assert sum(r.fee for r in results) <= rate * max(xs)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(losses=False), rate=rates, rule=rules)
def test_without_losses_any_split_charges_what_one_period_charges(
    data: st.DataObject, hist: History, rate: D, rule: WithdrawalRule,
) -> None:
    start, events = hist
    periods = data.draw(splits(events))
    single = run(start, [list(events)], rate, rule)[0]
    split = run(start, periods, rate, rule)
    assert sum(r.fee_exact for r in split) == single.fee_exact
    billed = sum(r.fee for r in split)
    # rounding down per period only ever favours the follower, by under a cent per period
    assert single.fee - CENT * len(split) < billed <= single.fee
    # never under water, so the withdrawal rule makes no difference
    assert split == run(start, periods, rate, WithdrawalRule.DOLLAR)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(), rate=rates)
def test_no_fee_until_the_mark_is_regained(data: st.DataObject, hist: History, rate: D) -> None:
    start, events = hist
    periods = data.draw(splits(events))
    results = run(start, periods, rate)
    xs = gains_above_initial_mark(start, events)
    mark, seen = D(0), 0  # the mark, as a gain over the initial one
    for period, r in zip(periods, results, strict=True):
        seen += len(period)
        x_end = xs[seen - 1] if seen else D(0)
        if x_end <= mark:
            assert r.fee == r.fee_exact == 0
        else:
            assert r.chargeable_gain == x_end - mark
        mark = max(mark, x_end)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(), rate=rates, rule=rules)
def test_fees_are_never_negative_nor_above_rate_times_positive_pnl(
    data: st.DataObject, hist: History, rate: D, rule: WithdrawalRule,
) -> None:
    start, events = hist
    for r in run(start, data.draw(splits(events)), rate, rule):
        assert 0 <= r.fee <= r.fee_exact
        assert r.fee_exact - r.fee < CENT
        assert r.fee == r.fee.quantize(CENT)
        assert r.hwm_after >= r.nav_end
        assert r.pnl == r.nav_end - r.nav_start - r.net_flows
        if rule is WithdrawalRule.DOLLAR:
            assert r.fee_exact <= rate * max(D(0), r.pnl)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(), rate=rates)
def test_dollar_rule_never_charges_more_than_proportional(
    data: st.DataObject, hist: History, rate: D,
) -> None:
    start, events = hist
    periods = data.draw(splits(events))
    dollar = run(start, periods, rate)
    prop = run(start, periods, rate, WithdrawalRule.PROPORTIONAL)
    for d_r, p_r in zip(dollar, prop, strict=True):
        assert d_r.fee <= p_r.fee
        assert d_r.hwm_after >= p_r.hwm_after


def reached_state(start: D, events: list[FeeEvent], rate: D, rule: WithdrawalRule) -> FeeState:
    _, state = close_period(FeeState.open(start), events, rate, rule=rule)
    return state


@settings(max_examples=100, deadline=None)
@given(hist=histories(), rate=rates, rule=rules, amount=st.integers(1, 10**8),
       observe=st.booleans())
def test_a_deposit_alone_never_creates_a_fee(
    hist: History, rate: D, rule: WithdrawalRule, amount: int, observe: bool,
) -> None:
    state = reached_state(*hist, rate, rule)
    ev: list[FeeEvent] = [Deposit(at(100), cents(amount))]
    if observe:  # the next statement shows the same money
        ev.append(NavObservation(at(101), state.nav + cents(amount)))
    r, s = close_period(state, ev, rate, rule=rule)
    assert r.fee == r.fee_exact == 0 and r.pnl == 0
    assert s == FeeState(nav=state.nav + cents(amount), hwm=state.hwm + cents(amount))


@settings(max_examples=100, deadline=None)
@given(hist=histories(), rate=rates, rule=rules, share=st.integers(1, 10_000),
       observe=st.booleans())
def test_a_withdrawal_alone_never_creates_a_fee(
    hist: History, rate: D, rule: WithdrawalRule, share: int, observe: bool,
) -> None:
    state = reached_state(*hist, rate, rule)
    amount = (state.nav * share / 10_000).quantize(CENT, rounding=ROUND_FLOOR)
    assume(amount > 0)
    ev: list[FeeEvent] = [Withdrawal(at(100), amount)]
    if observe:
        ev.append(NavObservation(at(101), state.nav - amount))
    r, s = close_period(state, ev, rate, rule=rule)
    assert r.fee == r.fee_exact == 0 and r.pnl == 0
    assert s.nav == state.nav - amount and s.hwm >= s.nav


def shifted(events: list[FeeEvent], k: int, delta: D) -> list[FeeEvent]:
    """NAV observations from position ``k`` on moved by ``delta`` (a flow inserted at k)."""
    return [NavObservation(ev.at, ev.nav + delta) if i >= k and isinstance(ev, NavObservation)
            else ev for i, ev in enumerate(events)]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(), rate=rates, amount=st.integers(1, 10**7))
def test_inserting_a_deposit_anywhere_changes_no_fee(
    data: st.DataObject, hist: History, rate: D, amount: int,
) -> None:
    start, events = hist
    k = data.draw(st.integers(0, len(events)))
    d = cents(amount)
    ts = events[k].at if k < len(events) else at(99)
    with_deposit = [*events[:k], Deposit(ts, d), *shifted(events, k, d)[k:]]
    periods = data.draw(splits(events))
    # the same cut points, one event later after k
    cut_ends = [sum(len(p) for p in periods[: i + 1]) for i in range(len(periods))]
    bounds = [0, *[c + (1 if c > k else 0) for c in cut_ends[:-1]], len(with_deposit)]
    periods2 = [with_deposit[a:b] for a, b in pairwise(bounds)]
    before = run(start, periods, rate)
    after = run(start, periods2, rate)
    assert [r.fee_exact for r in after] == [r.fee_exact for r in before]


@settings(max_examples=200, deadline=None)
@given(data=st.data(), hist=histories(), rate=rates)
def test_inserting_a_withdrawal_anywhere_changes_no_fee(
    data: st.DataObject, hist: History, rate: D,
) -> None:
    start, events = hist
    k = data.draw(st.integers(0, len(events)))
    running = [start, *[start + x + f for x, f in zip(
        gains_above_initial_mark(start, events), _flows(events), strict=True)]]
    room = min(running[k:])  # the account must stay covered after every later event
    assume(room > 0)
    amount = cents(data.draw(st.integers(1, int(room * 100))))
    ts = events[k].at if k < len(events) else at(99)
    with_wd = [*events[:k], Withdrawal(ts, amount), *shifted(events, k, -amount)[k:]]
    assert run(start, [with_wd], rate)[0].fee_exact == run(start, [list(events)], rate)[0] \
        .fee_exact


def _flows(events: Sequence[FeeEvent]) -> list[D]:
    total, out = D(0), []
    for ev in events:
        if isinstance(ev, Deposit):
            total += ev.amount
        elif isinstance(ev, Withdrawal):
            total -= ev.amount
        out.append(total)
    return out
