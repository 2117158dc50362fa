"""Reconciliation over the fakes: missed children are found and fixed through the outbox,
runs are stored and audited, in-flight fix-ups are never ordered twice, position sources
(derived, reported, broker), thresholds, and the refusals (maintenance, bad thresholds)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import pytest

from tests.application.conftest import World
from tests.fakes.brokers import FakeBrokerGateways
from vanta.application.followers import patch_follower
from vanta.application.manager_orders import replay_expansion
from vanta.application.navs import record_nav
from vanta.application.reconcile import get_reconciliation, reconcile_vault
from vanta.application.reconcile_inputs import (
    report_positions,
    set_follower_threshold,
    set_vault_threshold,
)
from vanta.domain.audit import verify_chain
from vanta.domain.errors import Conflict, NotFound, ValidationFailed


async def _missed(w: World, **follower: Any) -> str:
    """A follower (scale 0.5, NAV 10,000) whose child of a 10 AAPL buy dead-lettered."""
    fid = await w.follower(**follower)
    await record_nav(w.uow(), tenant_id="tnt_a", entity="follower", entity_id=fid,
                     raw={"nav": "10000"}, actor="t", clock=w.clock)
    sub = await w.submit()
    assert sub.expansion is not None
    async with w.uow() as u:
        for c in sub.expansion.dispatchable:
            assert await u.child_orders.update(c.fo_id, expect_state="pending", state="dlq")
        await u.commit()
    return fid


async def _run(w: World, dry_run: bool = True, brokers: Any = None) -> dict[str, Any]:
    return await reconcile_vault(w.uow, brokers, tenant_id="tnt_a", vault_id="VA",
                                 dry_run=dry_run, actor="ops", clock=w.clock)


async def _outbox(w: World) -> int:
    async with w.uow() as u:
        return await u.outbox.pending_count("mirror.dispatch")


async def test_a_dry_run_reports_the_missed_position_and_writes_no_order(w: World) -> None:
    fid = await _missed(w)
    before = await _outbox(w)
    report = await _run(w)
    assert [(d["follower_id"], d["target"], d["held"], d["drift_qty"], d["drift_usd"],
             d["drift_bps"], d["over_threshold"]) for d in report["drifts"]] == \
        [(fid, "5", "0", "-5", "-500", "500.00", True)]
    assert [(f["side"], f["qty"], f["fo_id"]) for f in report["fixups"]] == [("buy", "5", None)]
    assert report["followers"][0]["positions_source"] == "derived"
    assert await _outbox(w) == before
    assert await get_reconciliation(w.uow(), tenant_id="tnt_a", run_id=report["id"]) == report


@pytest.fixture
def w(world: World) -> World:
    return world


async def test_applying_dispatches_fixups_through_the_outbox_once(w: World) -> None:
    fid = await _missed(w)
    report = await _run(w, dry_run=False)
    fo_id = report["fixups"][0]["fo_id"]
    child = await w.child(fo_id)
    assert (child.follower_id, child.side.value, child.qty, child.state.value) == \
        (fid, "buy", Decimal(5), "pending")
    assert child.audit == {"sizing": {"reason": "reconcile", "reconcile_run": report["id"],
                                      "fixup": "true"}}
    # the fix-up is in flight: a second run orders nothing
    again = await _run(w, dry_run=False)
    assert again["fixups"] == [] and again["drifts"][0]["pending"] == "5"
    # delivered like any child, its body naming the reason and the run
    await w.drain()
    sent = [json.loads(r.body) for r in w.sender.requests if json.loads(r.body)["id"] == fo_id]
    assert sent and sent[0]["meta"]["source"] == {"reason": "reconcile",
                                                  "reconcile_run": report["id"]}
    # acknowledged, it is held: still nothing to do, and the manager's book is unchanged
    third = await _run(w, dry_run=False)
    assert third["fixups"] == [] and third["drifts"][0]["held"] == "5"
    assert third["drifts"][0]["target"] == "5"


async def test_a_fixup_replays_to_the_same_child(w: World) -> None:
    await _missed(w)
    report = await _run(w, dry_run=False)
    child = await w.child(report["fixups"][0]["fo_id"])
    replayed = await replay_expansion(w.uow(), tenant_id="tnt_a", mo_id=child.mo_id)
    assert [(c.fo_id, c.qty, c.side) for c in replayed.children] == \
        [(child.fo_id, child.qty, child.side)]


async def test_runs_and_fixups_are_audited(w: World) -> None:
    await _missed(w)
    report = await _run(w, dry_run=False)
    async with w.uow() as u:
        events = await u.audit.all()
    verify_chain(events)  # raises on a broken chain
    mine = [e.action for e in events if e.entity_id == report["id"]]
    assert mine == ["run", "fixup:dispatched"]


async def test_a_vault_in_maintenance_is_refused_and_nothing_is_written(w: World) -> None:
    await _missed(w)
    async with w.uow() as u:
        await u.vaults.set_maintenance("tnt_a", "VA", True)
        await u.commit()
    before = await _outbox(w)
    with pytest.raises(Conflict) as e:
        await _run(w, dry_run=False)
    assert e.value.code == "vault_in_maintenance"
    assert await _outbox(w) == before


async def test_unknown_vault_and_run_are_not_found(w: World) -> None:
    with pytest.raises(NotFound):
        await reconcile_vault(w.uow, None, tenant_id="tnt_b", vault_id="VA", actor="x")
    with pytest.raises(NotFound):
        await get_reconciliation(w.uow(), tenant_id="tnt_a", run_id="rc_nope")


async def test_a_reported_position_is_trusted_and_a_stale_one_orders_nothing(w: World) -> None:
    fid = await _missed(w)
    await report_positions(w.uow(), tenant_id="tnt_a", follower_id=fid,
                           raw={"positions": {"AAPL": "5"}}, actor="f", clock=w.clock)
    report = await _run(w)
    assert report["fixups"] == [] and report["drifts"][0]["held"] == "5"
    assert report["followers"][0]["positions_source"] == "reported"
    w.clock.advance(hours=1)
    stale = await _run(w, dry_run=False)
    assert [f["kind"] for f in stale["findings"]] == ["stale_positions"]
    assert stale["fixups"] == [] and stale["drifts"] == []


async def test_thresholds_per_vault_with_a_follower_override(w: World) -> None:
    fid = await _missed(w)
    await set_vault_threshold(w.uow(), tenant_id="tnt_a", vault_id="VA",
                              raw={"threshold_bps": 600}, actor="o", clock=w.clock)
    report = await _run(w)
    assert report["fixups"] == [] and report["followers"][0]["threshold_bps"] == 600
    out = await set_follower_threshold(w.uow(), tenant_id="tnt_a", follower_id=fid,
                                       raw={"threshold_bps": 100}, actor="o", clock=w.clock)
    assert out["effective_threshold_bps"] == 100
    assert len((await _run(w))["fixups"]) == 1
    await set_follower_threshold(w.uow(), tenant_id="tnt_a", follower_id=fid,
                                 raw={"threshold_bps": None}, actor="o", clock=w.clock)
    assert (await _run(w))["followers"][0]["threshold_bps"] == 600


@pytest.mark.parametrize("bad", [-1, 10_001, "5", 2.5])
async def test_thresholds_outside_the_range_are_refused(w: World, bad: object) -> None:
    with pytest.raises(ValidationFailed) as e:
        await set_vault_threshold(w.uow(), tenant_id="tnt_a", vault_id="VA",
                                  raw={"threshold_bps": bad}, actor="o")
    assert e.value.code == "invalid_threshold"


async def test_a_killed_follower_is_blocked_with_its_reason(w: World) -> None:
    fid = await _missed(w)
    await patch_follower(w.uow(), tenant_id="tnt_a", follower_id=fid,
                         raw={"kill_switch": True}, actor="o", clock=w.clock)
    report = await _run(w, dry_run=False)
    assert report["fixups"] == []
    assert [(b["follower_id"], b["reason"]) for b in report["blocked"]] == [(fid, "kill_switch")]


async def test_a_bridged_follower_is_read_from_its_broker(w: World) -> None:
    brokers = FakeBrokerGateways(settings={"prices": {"AAPL": Decimal(100)},
                                           "cash": Decimal(10_000)})
    fid = await w.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    sub = await w.submit()
    assert sub.expansion is not None
    async with w.uow() as u:
        for c in sub.expansion.dispatchable:
            await u.child_orders.update(c.fo_id, expect_state="pending", state="dlq")
        await u.commit()
    report = await _run(w, dry_run=False, brokers=brokers)
    assert report["followers"][0]["positions_source"] == "broker"
    assert (report["followers"][0]["nav"], report["followers"][0]["cash"]) == \
        ("10000", "10000")
    assert [(f["follower_id"], f["qty"]) for f in report["fixups"]] == [(fid, "5")]


async def test_a_bridged_followers_buy_is_cut_to_its_cash(w: World) -> None:
    brokers = FakeBrokerGateways(settings={"prices": {"AAPL": Decimal(100)},
                                           "cash": Decimal(300)})
    await w.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    sub = await w.submit()
    assert sub.expansion is not None
    async with w.uow() as u:
        for c in sub.expansion.dispatchable:
            await u.child_orders.update(c.fo_id, expect_state="pending", state="dlq")
        await u.commit()
    report = await _run(w, brokers=brokers)
    assert [f["qty"] for f in report["fixups"]] == ["3"]
    assert [(b["reason"], b["partial"]) for b in report["blocked"]] == \
        [("insufficient_cash", True)]


async def test_an_unreadable_broker_is_a_stale_finding(w: World) -> None:
    brokers = FakeBrokerGateways()
    fid = await w.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    await w.submit()
    brokers.for_follower(await _record(w, fid)).set_outage("down")
    report = await _run(w, dry_run=False, brokers=brokers)
    assert [f["kind"] for f in report["findings"]] == ["stale_positions"]
    assert report["fixups"] == []


async def _record(w: World, fid: str) -> Any:
    async with w.uow() as u:
        return await u.followers.get("tnt_a", fid)


async def test_bridged_followers_cannot_report_positions(w: World) -> None:
    fid = await w.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    with pytest.raises(Conflict) as e:
        await report_positions(w.uow(), tenant_id="tnt_a", follower_id=fid,
                               raw={"positions": {}}, actor="f")
    assert e.value.code == "follower_is_bridged"


@pytest.mark.parametrize(("raw", "code"), [
    ({"positions": {"AAPL": 1.5}}, "invalid_quantity"),
    ({"positions": {"AAPL": "x"}}, "invalid_quantity"),
    ({"positions": {"bad symbol!": "1"}}, "invalid_symbol"),
    ({"positions": []}, "invalid_positions"),
    ({}, "missing_field"),
    ({"positions": {}, "extra": 1}, "unknown_field"),
])
async def test_bad_position_reports_are_refused(w: World, raw: Any, code: str) -> None:
    fid = await w.follower()
    with pytest.raises(ValidationFailed) as e:
        await report_positions(w.uow(), tenant_id="tnt_a", follower_id=fid, raw=raw, actor="f")
    assert e.value.code == code




async def test_followers_that_mirrored_every_order_have_no_drift(w: World) -> None:
    live = await w.follower()
    shadow = await w.follower(mode="shadow")
    for fid in (live, shadow):
        await record_nav(w.uow(), tenant_id="tnt_a", entity="follower", entity_id=fid,
                         raw={"nav": "10000"}, actor="t", clock=w.clock)
    await w.submit(id="a", qty="10")
    await w.submit(id="b", qty="7")
    await w.submit(id="c", side="sell", qty="3")
    await w.drain()  # delivered: the live follower's children are acknowledged
    report = await _run(w, dry_run=False)
    assert {(d["follower_id"], d["held"], d["drift_qty"]) for d in report["drifts"]} == \
        {(live, "7", "0"), (shadow, "7", "0")}
    assert report["fixups"] == [] and report["blocked"] == []


async def test_two_runs_at_once_order_the_drift_once(w: World) -> None:
    fid = await _missed(w)
    first, second = await asyncio.gather(_run(w, dry_run=False), _run(w, dry_run=False))
    assert sorted(len(r["fixups"]) for r in (first, second)) == [0, 1]
    async with w.uow() as u:
        kids = await u.child_orders.list("tnt_a", follower_id=fid, mo_id=None, since=None,
                                         limit=100)
    assert sorted((c.state.value, c.qty) for c in kids) == \
        [("dlq", Decimal(5)), ("pending", Decimal(5))]
