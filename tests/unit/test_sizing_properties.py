"""Invariants of sizing and expansion over random followers, orders, prices and overlays."""

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta.domain.followers import FollowerMode, FollowerSpec, Protections, ScaleMode
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import Instrument
from vanta.domain.orders import ChildOrderState, ManagerOrder, Side, TimeInForce
from vanta.domain.overlays import OverlayEffect
from vanta.domain.sizing import NavState, OrderContext, Sized, size_child


def decimals(lo: str, hi: str, places: int) -> st.SearchStrategy[D]:
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places,
                       allow_nan=False, allow_infinity=False)


steps = st.sampled_from([D(1), D("0.1"), D("0.01"), D("0.0001"), D("0.00001")])
instruments = st.builds(
    lambda step, mult, frac: Instrument("X", "v", step, step * mult, D(0),
                                        step / 100 if frac else None),
    steps, st.integers(1, 3), st.booleans())
protections = st.builds(
    Protections,
    drawdown_stop_pct=st.none() | decimals("1", "50", 1),
    daily_loss_limit_usd=st.none() | decimals("1", "10000", 2),
    max_order_usd=st.none() | decimals("1", "100000", 2),
    allow_symbols=st.sampled_from([frozenset(), frozenset({"X"}), frozenset({"Y"})]),
    deny_symbols=st.sampled_from([frozenset(), frozenset({"X"})]),
)


@st.composite
def followers(draw: st.DrawFn, fid: str | None = None) -> FollowerSpec:
    mode = draw(st.sampled_from(list(FollowerMode)))
    cap = draw(decimals("1", "100000", 2)) if mode is FollowerMode.CAPPED else \
        draw(st.none() | decimals("1", "100000", 2))
    return FollowerSpec(
        follower_id=FollowerId(fid or f"f{draw(st.integers(0, 999)):03d}"), mode=mode,
        scale=draw(decimals("0.0001", "5", 4)), max_pos_usd=cap, kill_switch=draw(st.booleans()),
        scale_mode=draw(st.sampled_from(list(ScaleMode))),
        nav_multiplier=draw(decimals("0.1", "3", 2)), fractional=draw(st.booleans()),
        paused=draw(st.booleans()), protections=draw(protections),
        flip_allowed=draw(st.booleans()), persona_allowed=draw(st.booleans()),
    )


orders = st.builds(
    lambda qty, side, closes: ManagerOrder(ManagerOrderId("mo"), VaultId("v"), "M", "X", "v",
                                           side, qty, TimeInForce.DAY, None, closes),
    decimals("0.00001", "100000", 5), st.sampled_from(list(Side)), st.booleans(),
)
contexts = st.builds(
    OrderContext, price=st.none() | decimals("0.01", "100000", 2),
    manager_nav=st.none() | decimals("1000", "10000000", 2),
    manager_position=decimals("0", "200000", 5),
    overlay=st.builds(OverlayEffect, flip=decimals("0.1", "2", 2),
                      persona=st.sampled_from([D(1), D("0.75"), D("1.25"), D("0.5"), D("0.9")])),
)
navs = st.none() | st.builds(lambda n, p, d: NavState(n, max(n, p), d),
                             decimals("1", "1000000", 2), decimals("1", "1000000", 2),
                             decimals("1", "1000000", 2))
held = decimals("0", "10000", 5)


@settings(max_examples=600, deadline=None)
@given(orders, followers(), instruments, held, contexts, navs)
def test_sized_children_respect_every_bound(o, f, inst, h, ctx, nav) -> None:
    r = size_child(o, f, inst, ctx, held=h, nav=nav)
    if not isinstance(r, Sized):
        return
    assert r.qty > 0
    assert not f.kill_switch and not f.paused, "kill switch and pause send nothing"
    step = inst.step_for(f.fractional)
    if o.side is Side.BUY:
        assert r.qty % step == 0, "always a multiple of the lot step"
        if f.max_pos_usd is not None:
            assert ctx.price is not None
            assert (max(h, 0) + r.qty) * ctx.price <= f.max_pos_usd, "never above the cap"
        if f.protections.max_order_usd is not None:
            assert ctx.price is not None
            assert r.qty * ctx.price <= f.protections.max_order_usd
    else:
        assert r.qty <= h, "never sells more than held (so never opens a short)"
        if r.qty < h:
            assert r.qty % step == 0


@settings(max_examples=200, deadline=None)
@given(orders, st.lists(followers(), max_size=8, unique_by=lambda f: f.follower_id),
       instruments, contexts, st.data())
def test_expand_is_deterministic_and_complete(o, fs, inst, ctx, data) -> None:
    positions = {f.follower_id: data.draw(held) for f in fs}
    nav_map = {f.follower_id: n for f in fs if (n := data.draw(navs)) is not None}
    snap = Snapshot(ctx.price, positions, ctx.manager_nav, ctx.manager_position, nav_map,
                    ctx.overlay)
    a = expand(o, fs, inst, snap)
    b = expand(o, list(reversed(fs)), inst, Snapshot.from_json(snap.to_json()))
    assert a == b, "same inputs, in any order, give identical children"
    assert len(a.children) == len(fs), "one child per follower, skipped ones recorded"
    for c in a.children:
        spec = next(f for f in fs if f.follower_id == c.follower_id)
        if spec.kill_switch or spec.paused:
            assert c.state is ChildOrderState.SKIPPED
        if spec.mode is FollowerMode.SHADOW:
            assert c.state is not ChildOrderState.PENDING, "shadow never dispatches"
        if c.state is ChildOrderState.SKIPPED:
            assert c.qty == 0 and c.skip_reason
    assert all(c.state is ChildOrderState.PENDING for c in a.dispatchable)
