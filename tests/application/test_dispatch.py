"""The dispatcher's batches over the in-memory unit of work and a scripted sender: signed
sends, acknowledgements, retries on the schedule, terminal refusals, the kill switch,
maintenance holds, endpoint shares and sends that raise."""

from __future__ import annotations

import json
from collections import Counter

from tests.application.conftest import World
from tests.fakes.sender import Answer
from vanta.application.followers import parse_whsec
from vanta.application.overlays import apply_overlay
from vanta.domain.webhook_signing import sign_standard


async def _order(w: World, n: int = 1, **raw: object) -> tuple[list[str], list[str]]:
    """``n`` followers on one endpoint each, one order; (follower ids, child ids)."""
    fids = [await w.follower() for _ in range(n)]
    sub = await w.submit(**raw)
    assert sub.expansion is not None
    return fids, [c.fo_id for c in sub.expansion.children]


async def test_a_batch_sends_every_child_signed_and_records_the_ack(world: World) -> None:
    _, fos = await _order(world, 3)
    assert await world.dispatcher.run_once() == 3
    assert len(world.sender.requests) == 3
    for s in world.sender.requests:
        body = json.loads(s.body)
        fid = body["follower_id"]
        assert s.headers["webhook-id"] == body["id"]
        key = parse_whsec(world.secrets_of[fid])  # the secret handed out at registration
        ts = int(s.headers["webhook-timestamp"])
        assert s.headers["webhook-signature"] == sign_standard(key, body["id"], ts, s.body)
    for fo in fos:
        child = await world.child(fo)
        assert (child.state, child.dispatch_attempts) == ("ack", 1)
    async with world.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == 0
        attempts = await u.attempts.list(fos[0])
    assert [(a.attempt_no, a.status_code, a.outcome) for a in attempts] \
        == [(1, 200, "ack")]


async def test_a_failing_endpoint_is_retried_on_schedule_then_acknowledged(world: World
                                                                           ) -> None:
    _, [fo] = await _order(world)
    world.sender.script("https://hooks.example/0", Answer(503), Answer())
    await world.drain()
    assert (await world.child(fo)).state == "retry"
    assert await world.dispatcher.run_once() == 0  # not due before the first delay (1 s)
    world.clock.advance(1)
    await world.drain()
    child = await world.child(fo)
    assert (child.state, child.dispatch_attempts) == ("ack", 2)
    assert [s.headers["webhook-id"] for s in world.sender.requests] == [fo, fo]


async def test_retries_run_out_into_the_dead_letter_queue(world: World) -> None:
    _, [fo] = await _order(world)
    world.sender.script("https://hooks.example/0", Answer(500))
    await world.drain()
    world.clock.advance(1)
    await world.drain()
    world.clock.advance(5)
    await world.drain()
    child = await world.child(fo)
    assert (child.state, child.dispatch_attempts, child.dead_lettered_at) \
        == ("dlq", 3, world.clock.now)
    assert child.last_error == "HTTP 500"


async def test_a_4xx_answer_fails_the_child_at_once(world: World) -> None:
    _, [fo] = await _order(world)
    world.sender.script("https://hooks.example/0", Answer(422))
    await world.drain()
    assert (await world.child(fo)).state == "failed"
    assert len(world.sender.requests) == 1


async def test_a_refused_target_is_terminal(world: World) -> None:
    _, [fo] = await _order(world)
    world.sender.script("https://hooks.example/0", Answer.refused_target("private_address"))
    await world.drain()
    child = await world.child(fo)
    assert (child.state, child.last_error) == ("failed", "refused: private_address")


async def test_the_kill_switch_withdraws_queued_children(world: World) -> None:
    [fid], [fo] = await _order(world)
    async with world.uow() as u:
        await u.followers.update("tnt_a", fid, kill_switch=True)
        await u.commit()
    await world.drain()
    assert world.sender.requests == []
    assert (await world.child(fo)).state == "cancelled"


async def test_maintenance_holds_delivery_until_lifted(world: World) -> None:
    _, [fo] = await _order(world)
    await apply_overlay(world.uow(), tenant_id="tnt_a", vault_id="VA",
                        raw={"maintenance": {"enabled": True}}, actor="ops", clock=world.clock)
    assert await world.dispatcher.run_once() == 1
    assert world.sender.requests == [] and (await world.child(fo)).state == "pending"
    await apply_overlay(world.uow(), tenant_id="tnt_a", vault_id="VA",
                        raw={"maintenance": {"enabled": False}}, actor="ops", clock=world.clock)
    world.clock.advance(1)
    await world.drain()
    assert (await world.child(fo)).state == "ack"


async def test_an_endpoint_gets_no_more_than_its_share_per_batch(world: World) -> None:
    world.dispatcher.config.per_endpoint = 2
    for _ in range(5):
        await world.follower(webhook={"url": "https://shared.example/h"})
    sub = await world.submit()
    assert sub.expansion is not None
    assert await world.dispatcher.run_once() == 5
    assert len(world.sender.requests) == 2  # the other three were handed back, not attempted
    states = Counter([(await world.child(c.fo_id)).state for c in sub.expansion.children])
    assert states == {"ack": 2, "pending": 3}
    await world.drain()
    assert len(world.sender.requests) == 5


async def test_a_send_that_raises_goes_again_as_a_lost_attempt(world: World) -> None:
    _, [fo] = await _order(world)
    world.sender.script("https://hooks.example/0", Answer.raises(RuntimeError("socket gone")),
                        Answer())
    assert await world.dispatcher.run_once() == 1
    assert (await world.child(fo)).state == "sent"
    assert await world.dispatcher.run_once() == 0  # its lease is still running
    world.clock.advance(31)
    await world.drain()
    child = await world.child(fo)
    assert (child.state, child.dispatch_attempts) == ("ack", 2)
    async with world.uow() as u:
        attempts = await u.attempts.list(fo)
    assert [a.outcome for a in attempts] == ["lost", "ack"]


async def test_completed_orders_are_marked_when_their_last_child_settles(world: World
                                                                         ) -> None:
    _, fos = await _order(world, 2)
    await world.drain()
    async with world.uow() as u:
        child = await u.child_orders.get_unscoped(fos[0])
        assert child is not None
        order = await u.manager_orders.get_unscoped(child.mo_id)
    assert order is not None and order.state == "completed"
