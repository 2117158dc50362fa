"""Replay Studio properties over random recorded histories:

* a configuration equal to a real follower's, over a window with no missed orders and no
  overrides, reproduces the children the engine recorded for that follower exactly;
* a child never exceeds a cap or what the simulated follower holds;
* fees never exceed the fee rate times the gain above the high-water mark;
* running twice gives the same bytes and hash."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import ZERO, Instrument
from vanta.domain.orders import ChildOrderState, ManagerOrder, Side, TimeInForce
from vanta.domain.studio import ActualChild, RecordedOrder, StudioConfig
from vanta.domain.studio_fees import FeeTerms
from vanta.domain.studio_report import StudioRun, encode

T0 = datetime(2026, 1, 5, 14, 30, tzinfo=UTC)
REAL = FollowerId("real-1")


def decimals(lo: str, hi: str, places: int) -> st.SearchStrategy[D]:
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places,
                       allow_nan=False, allow_infinity=False)


instruments = st.builds(
    lambda step, frac: Instrument("X", "v", step, step, D(0), step / 100 if frac else None),
    st.sampled_from([D(1), D("0.01"), D("0.0001")]), st.booleans())


@st.composite
def specs(draw: st.DrawFn) -> FollowerSpec:
    """Settings whose sizing reads no follower NAV (fixed scale, no NAV guards): the real
    engine sizes them from recorded holdings only, as the simulation does."""
    mode = draw(st.sampled_from([FollowerMode.PROPORTIONAL, FollowerMode.CAPPED,
                                 FollowerMode.SHADOW]))
    cap = draw(decimals("100", "50000", 2)) if mode is FollowerMode.CAPPED else None
    prot = Protections(max_order_usd=draw(st.none() | decimals("50", "20000", 2)),
                       deny_symbols=draw(st.sampled_from([frozenset(), frozenset({"Y"})])),
                       symbol_map=draw(st.sampled_from([{}, {"X": "XX"}])))
    return FollowerSpec(REAL, mode, draw(decimals("0.01", "3", 2)), cap, False,
                        scale_mode=ScaleMode.FIXED, fractional=draw(st.booleans()),
                        protections=prot)


@st.composite
def histories(draw: st.DrawFn) -> list[RecordedOrder]:
    """Manager orders with their recorded price and the manager's position before each."""
    inst = draw(instruments)
    out: list[RecordedOrder] = []
    mpos = ZERO
    for i in range(draw(st.integers(1, 25))):
        side = draw(st.sampled_from([Side.BUY, Side.SELL])) if mpos > 0 else Side.BUY
        qty = draw(decimals("1", "500", 0)) if side is Side.BUY else \
            min(mpos, draw(decimals("1", "500", 0)))
        price = draw(st.none() | decimals("1", "900", 2)) if i else draw(decimals("1", "900", 2))
        order = ManagerOrder(ManagerOrderId(f"mo-{i:03d}"), VaultId("v"), f"c{i}", "X", "v",
                             side, qty, TimeInForce.DAY, price,
                             closes_position=side is Side.SELL and qty == mpos
                             and draw(st.booleans()))
        out.append(RecordedOrder(T0 + timedelta(hours=7 * i), order, inst, price,
                                 manager_position=mpos))
        mpos += qty if side is Side.BUY else -qty
    return out


def engine_children(spec: FollowerSpec, history: list[RecordedOrder]) -> dict[str, ActualChild]:
    """What the engine records: each order expanded on the follower's holdings as its earlier
    children add up (the child order repository's ``positions``)."""
    held = ZERO
    out = {}
    for rec in history:
        snap = Snapshot(price=rec.price, positions={REAL: held} if held else {},
                        manager_position=rec.manager_position)
        c = expand(rec.order, [spec], rec.instrument, snap).children[0]
        if c.state is not ChildOrderState.SKIPPED:
            held += c.qty if c.side is Side.BUY else -c.qty
        out[rec.order.mo_id] = ActualChild(c.qty, c.state.value, c.skip_reason, c.symbol,
                                           c.cap_applied)
    return out


@settings(max_examples=60, deadline=None)
@given(specs(), histories())
def test_a_followers_own_settings_reproduce_its_recorded_children(
        spec: FollowerSpec, history: list[RecordedOrder]) -> None:
    recorded = engine_children(spec, history)
    run = StudioRun([StudioConfig("own", spec)], D(100_000), compare=True)
    rows = [run.add(rec, recorded[rec.order.mo_id]) for rec in history]
    assert run.document({})["differing_orders"] == [0]
    for row in rows:
        sim, real = row["results"][0], recorded[row["mo_id"]]
        # a shadow child is sized and held like any other; only its state says shadow
        reason = real.skip_reason if real.state == "skipped" else None
        assert (D(sim["qty"]), sim["skip"], sim["cap_applied"]) == \
            (real.qty, reason, real.cap_applied)
        if sim["skip"] is None:
            assert sim["symbol"] == real.symbol


@settings(max_examples=60, deadline=None)
@given(st.lists(specs(), min_size=1, max_size=3), histories())
def test_a_child_never_exceeds_a_cap_or_a_holding(cfgs: list[FollowerSpec],
                                                  history: list[RecordedOrder]) -> None:
    run = StudioRun([StudioConfig(f"c{i}", s) for i, s in enumerate(cfgs)], D(50_000))
    held = [ZERO] * len(cfgs)
    for rec in history:
        row = run.add(rec)
        for i, (spec, res) in enumerate(zip(cfgs, row["results"], strict=True)):
            qty, px = D(res["qty"]), rec.price
            if rec.order.side is Side.SELL:
                assert qty <= held[i]
                held[i] -= qty
                continue
            if qty and px is not None:
                if spec.max_pos_usd is not None:
                    assert (held[i] + qty) * px <= spec.max_pos_usd
                if spec.protections.max_order_usd is not None:
                    assert qty * px <= spec.protections.max_order_usd
            held[i] += qty
            assert held[i] >= 0


@settings(max_examples=60, deadline=None)
@given(specs(), histories(), decimals("0", "1", 2), st.sampled_from(["day", "week", "month"]),
       st.none() | decimals("50000", "150000", 2))
def test_fees_never_exceed_the_rate_times_the_gain_above_the_mark(
        spec: FollowerSpec, history: list[RecordedOrder], rate: D, period: str,
        hwm: D | None) -> None:
    start = D(100_000)
    run = StudioRun([StudioConfig("fees", spec, FeeTerms(rate, hwm, period))], start)
    for rec in history:
        run.add(rec)
    summary = run.document({})["summary"][0]
    mark = start if hwm is None else hwm
    best = max([D(p["nav_end"]) for p in summary["fee_periods"]], default=ZERO)
    assert D(summary["fees"]) <= rate * max(ZERO, best - mark)
    for p in summary["fee_periods"]:
        gain = max(ZERO, D(p["nav_end"]) - D(p["hwm_before"]))
        assert D(p["fee"]) <= rate * gain
    assert D(summary["pnl_after_fees"]) == D(summary["pnl"]) - D(summary["fees"])


@settings(max_examples=25, deadline=None)
@given(st.lists(specs(), min_size=1, max_size=8), histories())
def test_running_twice_gives_the_same_hash(cfgs: list[FollowerSpec],
                                           history: list[RecordedOrder]) -> None:
    def once() -> tuple[str, bytes]:
        run = StudioRun([StudioConfig(f"c{i}", s) for i, s in enumerate(cfgs)], D(25_000))
        for rec in history:
            run.add(rec)
        return run.seal({"n": len(cfgs)})
    digest, data = once()
    assert once() == (digest, data)
    # the bytes put together from parts are the canonical form the hash names
    doc = json.loads(data)
    assert doc.pop("sha256") == digest == hashlib.sha256(encode(doc)).hexdigest()
