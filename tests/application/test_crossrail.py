"""Cross-rail use cases over the memory database: fee models versioned in the audit,
stablecoin buffers (vault default, Institutional override), route quotes, and child legs run
against the paper venue's USDC balance: conversion first, asset order after it fills, resized
when the conversion closes short."""

from dataclasses import replace
from decimal import Decimal as D

import pytest

from tests.application.conftest import World
from tests.fakes.brokers import paper_gateway
from vanta.application.crossrail import (
    effective_buffer,
    fee_models,
    put_fee_model,
    quote_route,
    set_buffer,
)
from vanta.application.dag import order_dag
from vanta.application.legs import (
    MAX_LEG_ATTEMPTS,
    plan_child_legs,
    poll_legs,
    run_ready_legs,
)
from vanta.domain.errors import NotFound, ValidationFailed
from vanta.domain.legs import LegState
from vanta.domain.routing import LegKind, RouteRequest
from vanta.domain.venues import DEFAULT_FEE_MODELS

# the paper venue without a BTC-USD book: buys go through USDC
PAPER = {"paper": replace(DEFAULT_FEE_MODELS["paper"],
                          pairs=frozenset({"BTC-USDC", "USDC-USD"}))}
MODEL = {"maker_bps": "10", "taker_bps": "20", "spread_bps": "5", "conversion_bps": "1",
         "min_order_usd": "1", "latency_ms": 100,
         "pairs": ["BTC-USD", "BTC-USDC", "USDC-USD"]}


async def _audit(world: World, entity_id: str) -> list[tuple[str, dict[str, object]]]:
    async with world.uow() as u:
        return [(e.action, dict(e.payload)) for e in await u.audit.all()
                if e.entity_id == entity_id]


async def test_each_fee_model_edit_is_a_new_audited_version(world: World) -> None:
    first = await put_fee_model(world.uow(), venue="Kraken", raw=MODEL, actor="admin",
                                tenant_id="tnt_a", clock=world.clock)
    second = await put_fee_model(world.uow(), venue="kraken",
                                 raw={**MODEL, "taker_bps": "15"}, actor="admin",
                                 tenant_id="tnt_a", clock=world.clock)
    assert (first.version, second.version) == (1, 2)
    async with world.uow() as u:
        models = await fee_models(u)
    assert models["kraken"].taker_bps == D(15) and models["kraken"].version == 2
    assert models["binance"] == DEFAULT_FEE_MODELS["binance"]
    events = await _audit(world, "kraken")
    assert [a for a, _ in events] == ["fee_model_updated"] * 2
    assert [(p["version"], p["previous"]["version"]) for _, p in events] == [(1, 0), (2, 1)]
    assert events[1][1]["previous"]["taker_bps"] == "20"


async def test_bad_fee_models_and_venues_change_nothing(world: World) -> None:
    with pytest.raises(NotFound) as nf:
        await put_fee_model(world.uow(), venue="mtgox", raw=MODEL, actor="admin",
                            tenant_id="tnt_a")
    assert nf.value.code == "unknown_venue"
    with pytest.raises(ValidationFailed):
        await put_fee_model(world.uow(), venue="kraken", raw={**MODEL, "taker_bps": "-1"},
                            actor="admin", tenant_id="tnt_a")
    async with world.uow() as u:
        assert await u.venue_fees.list() == []
    assert await _audit(world, "kraken") == []


async def test_buffer_vault_default_and_institutional_override(world: World) -> None:
    core = await world.follower()
    inst = await world.follower(plan="institutional")
    await set_buffer(world.uow(), tenant_id="tnt_a", entity="vault", entity_id="VA",
                     raw={"amount": "500"}, actor="owner", clock=world.clock)
    await set_buffer(world.uow(), tenant_id="tnt_a", entity="follower", entity_id=inst,
                     raw={"amount": "2500.5"}, actor="owner", clock=world.clock)
    with pytest.raises(ValidationFailed) as e:
        await set_buffer(world.uow(), tenant_id="tnt_a", entity="follower", entity_id=core,
                         raw={"amount": "10"}, actor="owner")
    assert e.value.code == "plan_lacks_feature"
    with pytest.raises(ValidationFailed) as e:
        await set_buffer(world.uow(), tenant_id="tnt_a", entity="vault", entity_id="VA",
                         raw={"amount": "-1"}, actor="owner")
    assert e.value.code == "invalid_buffer"
    with pytest.raises(NotFound):  # another tenant's vault
        await set_buffer(world.uow(), tenant_id="tnt_b", entity="vault", entity_id="VA",
                         raw={"amount": "1"}, actor="owner")
    async with world.uow() as u:
        fc, fi = await u.followers.get("tnt_a", core), await u.followers.get("tnt_a", inst)
        assert fc is not None and fi is not None
        assert await effective_buffer(u, fc) == (D(500), "vault")
        assert await effective_buffer(u, fi) == (D("2500.5"), "follower")
    assert [a for a, _ in await _audit(world, "VA")][-1] == "stablecoin_buffer_set"


async def test_quote_prices_every_route_and_refuses_bad_input(world: World) -> None:
    fid = await world.follower()
    async with world.uow() as u:
        follower = await u.followers.get("tnt_a", fid)
    assert follower is not None
    body = {"symbol": "BTC-USD", "side": "buy", "qty": "0.1", "price": "40000",
            "usd_balance": "10000"}
    q = await quote_route(world.uow(), tenant_id="tnt_a", follower=follower, raw=body)
    # a webhook follower is linked to every venue: the free paper venue wins
    assert q["chosen"]["venue"] == "paper" and q["chosen"]["cost_usd"] == "0"
    assert len(q["rejected"]) == 7 and q["buffer"]["amount"] == "0"
    for change, code in (({"symbol": "DOGE"}, "unknown_pair"),
                         ({"venues": ["mtgox"]}, "unknown_venue"),
                         ({"qty": "-1"}, "invalid_number")):
        with pytest.raises(ValidationFailed) as e:
            await quote_route(world.uow(), tenant_id="tnt_a", follower=follower,
                              raw={**body, **change})
        assert e.value.code == code


async def _child(world: World) -> str:
    await world.follower()
    sub = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000")
    assert sub.expansion is not None
    return sub.expansion.children[0].fo_id


def _request(usdc: str, buffer: str) -> RouteRequest:
    return RouteRequest("BTC", "buy", D("0.5"), D(40000), D(100000), D(usdc), D(buffer), 1000,
                        ("paper",))


async def test_asset_leg_waits_for_the_conversion_then_fills(world: World) -> None:
    fo_id = await _child(world)
    decision, legs = await plan_child_legs(
        world.uow(), tenant_id="tnt_a", fo_id=fo_id, request=_request("0", "1000"),
        models=PAPER, lot_step=D("0.00001"), min_qty=D("0.00001"),
        clock=world.clock)
    assert [g.kind for g in legs] == [LegKind.CONVERT, LegKind.TRADE]
    assert legs[0].amount == D(21000)  # 20,000 of BTC + the 1,000 buffer, paper charges 0
    venue = paper_gateway({"BTC-USDC": D(40000), "BTC-USD": D(40000)}, cash=D(50000))
    after = await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                                 clock=world.clock)
    assert [g.state for g in after] == [LegState.SENT, LegState.WAITING]
    assert venue.order_count(legs[1].leg_id) == 0  # not before the conversion fills
    venue.step()
    after = await poll_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                            clock=world.clock)
    assert [g.state for g in after] == [LegState.FILLED, LegState.PLANNED]
    await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id, clock=world.clock)
    venue.step()
    after = await poll_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                            clock=world.clock)
    assert [g.state for g in after] == [LegState.FILLED, LegState.FILLED]
    assert venue.usdc == D(1000)  # the buffer is left in USDC
    assert await venue.positions() == {"BTC-USDC": D("0.5"), "USDC-USD": D(1000)}
    actions = [a for a, _ in await _audit(world, f"{fo_id}.1")]
    assert actions == ["leg_planned", "leg_released", "leg_sent", "leg_fill"]
    assert [a for a, p in await _audit(world, fo_id) if a == "route_chosen"
            and len(p["rejected"]) == 1]  # type: ignore[arg-type]
    assert decision.chosen is not None


async def test_a_short_conversion_resizes_the_asset_leg(world: World) -> None:
    fo_id = await _child(world)
    _, legs = await plan_child_legs(
        world.uow(), tenant_id="tnt_a", fo_id=fo_id, request=_request("0", "1000"),
        models=PAPER, lot_step=D("0.00001"), min_qty=D("0.00001"),
        clock=world.clock)
    venue = paper_gateway({"BTC-USDC": D(40000)}, cash=D(50000), fill_steps=(2, 2), seed=3)
    await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id, clock=world.clock)
    venue.step()  # the first of two parts
    await venue.cancel(legs[0].leg_id)  # the rest is withdrawn at the venue
    report = await venue.order_report(legs[0].leg_id)
    assert 0 < report.filled_qty < D(21000)
    after = await poll_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                            clock=world.clock)
    expected = ((report.filled_qty - 1000) / 40000).quantize(D("0.00001"), rounding="ROUND_FLOOR")
    assert after[0].state is LegState.FILLED and after[0].filled == report.filled_qty
    assert (after[1].state, after[1].amount) == (LegState.PLANNED, min(expected, D("0.5")))
    events = dict(await _audit(world, f"{fo_id}.1"))
    assert events["leg_released"]["resized_from"] == "0.5"


async def test_a_refused_conversion_cancels_the_asset_leg(world: World) -> None:
    fo_id = await _child(world)
    await plan_child_legs(world.uow(), tenant_id="tnt_a", fo_id=fo_id,
                          request=_request("0", "0"), models=PAPER,
                          lot_step=D("0.00001"), min_qty=D("0.00001"), clock=world.clock)
    venue = paper_gateway({"BTC-USDC": D(40000)}, cash=D(100))  # cannot pay for the USDC
    after = await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                                 clock=world.clock)
    assert [(g.state, g.reason) for g in after] == [
        (LegState.FAILED, "insufficient_buying_power"),
        (LegState.CANCELLED, "predecessor_failed")]
    assert venue.order_count() == 0


async def test_no_feasible_route_stores_no_legs(world: World) -> None:
    fo_id = await _child(world)
    decision, legs = await plan_child_legs(
        world.uow(), tenant_id="tnt_a", fo_id=fo_id,
        request=RouteRequest("BTC", "buy", D(1), D(40000), D(10), D(0), D(0), 1000,
                             ("paper",)),
        models=PAPER, lot_step=D("0.00001"), min_qty=D("0.00001"))
    assert decision.chosen is None and legs == []
    async with world.uow() as u:
        assert await u.legs.for_child(fo_id) == []
    assert [a for a, _ in await _audit(world, fo_id)][-1] == "route_unavailable"


async def test_the_order_dag_shows_the_legs_in_sequence_with_their_events(world: World) -> None:
    fo_id = await _child(world)
    await plan_child_legs(world.uow(), tenant_id="tnt_a", fo_id=fo_id,
                          request=_request("0", "1000"), models=PAPER, lot_step=D("0.00001"),
                          min_qty=D("0.00001"), clock=world.clock)
    venue = paper_gateway({"BTC-USDC": D(40000)}, cash=D(50000))
    await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id, clock=world.clock)
    child = await world.child(fo_id)
    dag = (await order_dag(world.uow(), "tnt_a", child.mo_id)).dag.to_json()
    legs = [n for n in dag["nodes"] if n["kind"] == "rail_leg"]
    assert [(n["attrs"]["kind"], n["state"]) for n in legs] == [("convert", "sent"),
                                                                ("trade", "waiting")]
    edges = {(e["from"], e["to"], e["kind"]) for e in dag["edges"]}
    conv, trade = f"rail_leg:{fo_id}.0", f"rail_leg:{fo_id}.1"
    assert {(f"fo:{fo_id}", conv, "planned_as"), (f"fo:{fo_id}", trade, "planned_as"),
            (conv, trade, "then")} <= edges
    audited = [e for e in dag["edges"] if e["from"] == conv and e["kind"] == "audited"]
    assert len(audited) == 2  # leg_planned, leg_sent
    # the route decision is an event of the child itself
    child_events = {n["state"] for n in dag["nodes"] if n["kind"] == "audit_event"}
    assert "route_chosen" in child_events


async def test_an_outage_retries_the_leg_then_fails_it(world: World) -> None:
    fo_id = await _child(world)
    await plan_child_legs(world.uow(), tenant_id="tnt_a", fo_id=fo_id,
                          request=_request("0", "0"), models=PAPER, lot_step=D("0.00001"),
                          min_qty=D("0.00001"), clock=world.clock)
    venue = paper_gateway({"BTC-USDC": D(40000)}, cash=D(50000))
    venue.set_outage("maintenance")
    for _ in range(MAX_LEG_ATTEMPTS - 1):
        after = await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                                     clock=world.clock)
        assert after[0].state is LegState.PLANNED  # back to ready for the next run
    after = await run_ready_legs(world.uow, venue, tenant_id="tnt_a", fo_id=fo_id,
                                 clock=world.clock)
    assert [(g.state, g.attempts) for g in after] == [(LegState.FAILED, MAX_LEG_ATTEMPTS),
                                                      (LegState.CANCELLED, 0)]
    assert after[0].reason == "retries_exhausted: outage"
    actions = [a for a, _ in await _audit(world, f"{fo_id}.0")]
    assert actions.count("leg_retry") == MAX_LEG_ATTEMPTS - 1 and actions[-1] == "leg_failed"


async def test_the_web_dag_draws_the_legs_in_sequence(world: World) -> None:
    fo_id = await _child(world)
    await plan_child_legs(world.uow(), tenant_id="tnt_a", fo_id=fo_id,
                          request=_request("0", "1000"), models=PAPER, lot_step=D("0.00001"),
                          min_qty=D("0.00001"), clock=world.clock)
    child = await world.child(fo_id)
    # the web order page asks for a small first page of children: the legs come with it
    page = await order_dag(world.uow(), "tnt_a", child.mo_id, limit=12)
    legs = [(n.id, n.state) for n in page.dag.nodes if n.kind == "rail_leg"]
    assert legs == [(f"rail_leg:{fo_id}.0", "planned"), (f"rail_leg:{fo_id}.1", "waiting")]
    edges = {(e.source, e.target, e.kind) for e in page.dag.edges}
    assert (f"rail_leg:{fo_id}.0", f"rail_leg:{fo_id}.1", "then") in edges
