"""A crypto vault's order reaching USD-funded followers, end to end over the memory database
and the paper venue: the legs are planned with the child (in its transaction), the
dispatcher sends the conversion, the confirmer sends the asset leg only once the conversion
filled, and the child settles from the asset leg. A webhook follower gets the planned legs in
its signed body."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal as D
from typing import Any

from standardwebhooks.webhooks import Webhook

from tests.application.conftest import World
from tests.fakes.brokers import PaperBroker, paper_gateway
from tests.fakes.signing import FakeSigner, FakeVerifier
from vanta.application.bridged import confirm_fills
from vanta.application.crossrail import put_fee_model, set_buffer
from vanta.application.crossrail_plan import usdc_estimate
from vanta.application.dispatch import DispatchConfig, Dispatcher
from vanta.application.ports.brokers import BrokerGateway
from vanta.application.replay_bundle import build_bundle
from vanta.application.replay_verify import verify_bundle
from vanta.domain.replay_bundle import pack, unpack

# the paper venue without a BTC-USD book: a USD-funded buy converts to USDC first
PAPER_USDC_ONLY = {"maker_bps": "0", "taker_bps": "0", "spread_bps": "0",
                   "conversion_bps": "0", "min_order_usd": "1", "latency_ms": 50,
                   "pairs": ["BTC-USDC", "USDC-USD"]}


class _Venue:
    """Every bridged follower on one paper account."""

    def __init__(self, gw: BrokerGateway) -> None:
        self.gw = gw

    def for_follower(self, follower: object) -> BrokerGateway:
        return self.gw

    async def close(self) -> None:
        return None


async def _crypto_world(world: World, *, buffer: str = "1000") -> None:
    async with world.uow() as u:
        await u.instruments.upsert({"symbol": "BTC-USD", "venue": "default",
                                    "lot_step": D("0.00001"), "min_qty": D("0.00001"),
                                    "min_notional": D(0), "updated_at": world.clock()})
        await u.commit()
    await put_fee_model(world.uow(), venue="paper", raw=PAPER_USDC_ONLY, actor="admin",
                        tenant_id="tnt_a", clock=world.clock)
    await set_buffer(world.uow(), tenant_id="tnt_a", entity="vault", entity_id="VA",
                     raw={"amount": buffer}, actor="owner", clock=world.clock)


def _dispatcher(world: World, venue: PaperBroker) -> Dispatcher:
    return Dispatcher(uow_factory=world.db.uow, sender=world.sender, secrets=world.secrets,
                      clock=world.clock, rng=random.Random(7), brokers=_Venue(venue),
                      config=DispatchConfig(retry_schedule=(1.0,), jitter_fraction=0.0))


async def _legs(world: World, fo_id: str) -> list[tuple[str, str, str, D, D]]:
    async with world.uow() as u:
        return [(g.kind, g.pair, g.state, g.amount, g.filled)
                for g in await u.legs.for_child(fo_id)]


async def test_bridged_follower_converts_then_buys_and_settles(world: World) -> None:
    await _crypto_world(world)
    fid = await world.follower(webhook=None, bridged={"broker": "paper",
                                                      "credentials": {"cash": "50000"}})
    sub = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000")
    assert sub.expansion is not None
    [child] = sub.expansion.children
    assert (child.follower_id, child.qty) == (fid, D("0.5"))
    # planned with the child: USD→USDC for the order plus the 1,000 buffer, then the asset
    assert await _legs(world, child.fo_id) == [
        ("convert", "USDC-USD", "planned", D(21000), D(0)),
        ("trade", "BTC-USDC", "waiting", D("0.5"), D(0))]
    venue = paper_gateway({}, cash=D(50000))
    d = _dispatcher(world, venue)
    await d.run_once()
    assert (await world.child(child.fo_id)).state == "ack"
    assert [s for _, _, s, _, _ in await _legs(world, child.fo_id)] == ["sent", "waiting"]
    await confirm_fills(world.db.uow, d.brokers, clock=world.clock)  # type: ignore[arg-type]
    assert venue.order_count(f"{child.fo_id}.1") == 0  # not before the conversion fills
    venue.step()
    await confirm_fills(world.db.uow, d.brokers, clock=world.clock)  # type: ignore[arg-type]
    assert [s for _, _, s, _, _ in await _legs(world, child.fo_id)] == ["filled", "sent"]
    venue.step()
    assert await confirm_fills(world.db.uow, d.brokers,  # type: ignore[arg-type]
                               clock=world.clock) == 1
    settled = await world.child(child.fo_id)
    assert (settled.state, settled.filled_qty) == ("confirmed", D("0.5"))
    assert await venue.positions() == {"BTC-USDC": D("0.5"), "USDC-USD": D(1000)}
    assert venue.cash == D(29000)
    async with world.uow() as u:
        fills = await u.fills.for_child(child.fo_id)
        actions = [e.action for e in await u.audit.all()
                   if e.entity_id in (child.fo_id, f"{child.fo_id}.0", f"{child.fo_id}.1")]
        legs = (await u.legs.for_followers("tnt_a", [fid]))[fid]
    assert sum(f.qty for f in fills) == D("0.5")
    assert actions.count("leg_planned") == 2 and "leg_released" in actions
    assert actions[-1] == "broker:confirmed" and "route_chosen" in actions
    assert usdc_estimate(legs) == D(1000)  # what the venue holds


async def test_the_next_order_spends_the_buffer_estimate_without_converting(
        world: World) -> None:
    await _crypto_world(world, buffer="30000")
    await world.follower(webhook=None, bridged={"broker": "paper",
                                                "credentials": {"cash": "90000"}})
    first = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000", id="o1")
    second = await world.submit(symbol="BTC-USD", qty="0.5", ref_price="40000", id="o2")
    assert first.expansion is not None and second.expansion is not None
    # the first topped USDC up to 20,000 + the 30,000 buffer; the second is paid from it
    assert [k for k, *_ in await _legs(world, first.expansion.children[0].fo_id)] == [
        "convert", "trade"]
    assert [(k, p, a) for k, p, _, a, _ in
            await _legs(world, second.expansion.children[0].fo_id)] == [
        ("trade", "BTC-USDC", D("0.25"))]


async def test_no_feasible_route_skips_the_child_and_dispatches_nothing(world: World) -> None:
    await _crypto_world(world)
    await put_fee_model(world.uow(), venue="paper", raw={**PAPER_USDC_ONLY, "latency_ms":
                                                         3_000_000}, actor="admin",
                        tenant_id="tnt_a", clock=world.clock)
    await world.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    sub = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000")
    assert sub.expansion is not None and sub.state == "completed"
    [child] = sub.expansion.children
    assert (child.state.value, child.skip_reason) == ("skipped", "no_feasible_route")
    assert await _legs(world, child.fo_id) == []
    async with world.uow() as u:
        [ev] = [e for e in await u.audit.all() if e.action == "route_unavailable"]
        assert {(r["kind"], r["reason"]) for r in ev.payload["rejected"]} == {
            ("direct", "pair_not_traded"), ("via_usdc", "over_latency_budget")}
        assert await u.outbox.pending_count("mirror.dispatch") == 0


async def test_equities_orders_and_fiat_only_vaults_get_no_legs(world: World) -> None:
    await _crypto_world(world)
    await world.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    await world.follower(webhook=None, bridged={"broker": "alpaca", "credentials": {
        "key_id": "k", "secret_key": "s"}})
    stock = await world.submit(symbol="AAPL", qty="10", ref_price="100", id="s1")
    crypto = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000", id="c1")
    assert stock.expansion is not None and crypto.expansion is not None
    async with world.uow() as u:
        legs = await u.legs.for_children(
            c.fo_id for c in (*stock.expansion.children, *crypto.expansion.children))
        await u.vaults.update("tnt_a", "VA", rails={"fiat": True, "crypto": False})
        await u.commit()
    # only the paper follower's crypto child: Alpaca has no crypto venue to route through
    assert len(legs) == 1
    fiat_only = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000", id="c2")
    assert fiat_only.expansion is not None
    async with world.uow() as u:
        assert not await u.legs.for_children(c.fo_id for c in fiat_only.expansion.children)


async def test_webhook_follower_receives_its_legs_in_the_signed_body(world: World) -> None:
    await _crypto_world(world)
    fid = await world.follower()
    sub = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000")
    assert sub.expansion is not None
    [child] = sub.expansion.children
    await world.drain()
    [sent] = world.sender.sent_to("https://hooks.example/0")
    # the receiver's check (standardwebhooks), at the time the message was signed
    ts = int(sent.headers["webhook-timestamp"])
    expected = Webhook(world.secrets_of[fid]).sign(
        sent.headers["webhook-id"], datetime.fromtimestamp(ts, UTC), sent.body.decode())
    assert expected in sent.headers["webhook-signature"].split(" ")
    payload: Any = json.loads(sent.body)
    assert payload["id"] == child.fo_id
    # the cheapest route over every venue (a webhook follower runs the plan itself)
    legs = payload["legs"]
    assert [(g["kind"], g["after"]) for g in legs][-1] == ("trade", len(legs) - 2
                                                          if len(legs) > 1 else None)
    assert [g["leg_id"] for g in legs] == [f"{child.fo_id}.{i}" for i in range(len(legs))]
    assert (await world.child(child.fo_id)).state == "ack"


async def test_the_replay_bundle_routes_again_and_checks_the_legs(world: World) -> None:
    await _crypto_world(world)
    # the paper venue too slow for the latency budget: its bridged follower has no route,
    # the webhook follower routes through another venue
    await put_fee_model(world.uow(), venue="paper", raw={**PAPER_USDC_ONLY, "latency_ms":
                                                         3_000_000}, actor="admin",
                        tenant_id="tnt_a", clock=world.clock)
    await world.follower(webhook=None, bridged={"broker": "paper", "credentials": {}})
    await world.follower()
    sub = await world.submit(symbol="BTC-USD", qty="1", ref_price="40000")
    assert sub.expansion is not None
    assert sorted(str(c.skip_reason) for c in sub.expansion.children) == [
        "None", "no_feasible_route"]
    signer = FakeSigner(b"s" * 32)
    bundle = await build_bundle(world.uow(), "tnt_a", sub.order.mo_id, signer=signer,
                                code_version={"version": "test"})
    report = verify_bundle(bundle.data, FakeVerifier(), signer.public_key())
    assert report.ok and report.children == 2, report.problems
    assert "2 route(s) recomputed and their legs checked" in report.notes
    files = unpack(bundle.data)
    assert len(json.loads(files["outputs/legs.json"])) >= 1
    # a leg that was not the route's, and a route input that was not the one recorded
    for name, old, new in (("outputs/legs.json", b'"pair": "', b'"pair": "X'),
                           ("inputs/routes.json", b'"usd_balance": "', b'"usd_balance": "1')):
        changed = dict(files)
        changed[name] = files[name].replace(old, new, 1)
        assert changed[name] != files[name]
        broken = verify_bundle(pack(changed), FakeVerifier(), signer.public_key())
        assert any(p.startswith(f"{name} was altered") for p in broken.problems)
        assert any(name in p and "child" in p for p in broken.problems), broken.problems
