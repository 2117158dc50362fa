"""Invariants of sizing and expansion over random followers, orders and prices."""

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from vanta.domain.followers import FollowerMode, FollowerSpec
from vanta.domain.ids import FollowerId, ManagerOrderId, VaultId
from vanta.domain.mirroring import Snapshot, expand
from vanta.domain.money import Instrument
from vanta.domain.orders import ChildOrderState, ManagerOrder, Side, TimeInForce
from vanta.domain.sizing import Sized, size_child


def decimals(lo: str, hi: str, places: int) -> st.SearchStrategy[D]:
    return st.decimals(min_value=D(lo), max_value=D(hi), places=places,
                       allow_nan=False, allow_infinity=False)


steps = st.sampled_from([D(1), D("0.1"), D("0.01"), D("0.0001"), D("0.00001")])
instruments = st.builds(lambda step, mult: Instrument("X", "v", step, step * mult, D(0)),
                        steps, st.integers(1, 3))
followers = st.builds(
    lambda i, scale, cap, kill, mode: FollowerSpec(FollowerId(f"f{i:03d}"), mode, scale, cap,
                                                  kill),
    st.integers(0, 999), decimals("0.0001", "5", 4),
    st.none() | decimals("1", "100000", 2), st.booleans(),
    st.sampled_from(list(FollowerMode)),
)
orders = st.builds(
    lambda qty, side, closes: ManagerOrder(ManagerOrderId("mo"), VaultId("v"), "M", "X", "v",
                                           side, qty, TimeInForce.DAY, None, closes),
    decimals("0.00001", "100000", 5), st.sampled_from(list(Side)), st.booleans(),
)
prices = decimals("0.01", "100000", 2)
held = decimals("0", "10000", 5)


@settings(max_examples=400, deadline=None)
@given(orders, followers, instruments, held, prices)
def test_sized_children_respect_every_bound(o, f, inst, h, price) -> None:
    r = size_child(o, f, inst, held=h, price=price)
    if not isinstance(r, Sized):
        return
    assert r.qty > 0
    assert not f.kill_switch
    if o.side is Side.BUY:
        assert r.qty % inst.lot_step == 0, "always a multiple of the lot step"
        assert r.qty <= o.qty * f.scale, "never more than the proportional share"
        if f.max_pos_usd is not None:
            assert (h + r.qty) * price <= f.max_pos_usd, "never above the cap"
    else:
        assert r.qty <= h, "never sells more than held"
        if not o.closes_position and r.qty < h:
            assert r.qty % inst.lot_step == 0


@settings(max_examples=200, deadline=None)
@given(orders, st.lists(followers, max_size=8, unique_by=lambda f: f.follower_id), instruments,
       prices, st.data())
def test_expand_is_deterministic_and_complete(o, fs, inst, price, data) -> None:
    positions = {f.follower_id: data.draw(held) for f in fs}
    snap = Snapshot(price, positions)
    a = expand(o, fs, inst, snap)
    b = expand(o, list(reversed(fs)), inst, Snapshot.from_json(snap.to_json()))
    assert a == b, "same inputs, in any order, give byte-identical children"
    assert len(a.children) == len(fs), "one child per follower, skipped ones recorded"
    for c in a.children:
        spec = next(f for f in fs if f.follower_id == c.follower_id)
        if spec.kill_switch:
            assert c.state is ChildOrderState.SKIPPED and c.skip_reason == "kill_switch"
        if spec.mode is FollowerMode.SHADOW:
            assert c.state is not ChildOrderState.PENDING, "shadow never dispatches"
        if c.state is ChildOrderState.SKIPPED:
            assert c.qty == 0 and c.skip_reason
    assert all(c.state is ChildOrderState.PENDING for c in a.dispatchable)
