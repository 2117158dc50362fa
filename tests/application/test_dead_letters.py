"""Dead letters: listing them with the caller's narrowing, and redelivering them with the
same webhook-id; outside the narrowing a child is reported like an unknown id."""

from __future__ import annotations

import json
from datetime import timedelta

from tests.application.conftest import World
from vanta.application.dead_letters import list_dead_letters, redeliver
from vanta.application.seed import create_vault


async def _park(w: World, fo_ids: list[str], at_offset: float = 0) -> None:
    """Put children in the dead-letter queue as the dispatcher does when retries run out:
    the child parked, its outbox row done."""
    async with w.uow() as u:
        rows = await u.outbox.claim_due("mirror.dispatch", w.clock.now, 100,
                                        timedelta(seconds=30))
        await u.outbox.complete_many([r.id for r in rows if r.key in fo_ids],
                                     w.clock.now)
        for fo in fo_ids:
            assert await u.child_orders.update(fo, expect_state="pending", state="dlq",
                                               dead_lettered_at=w.clock.advance(at_offset),
                                               last_error="HTTP 500")
        await u.commit()


async def _setup(w: World) -> dict[str, str]:
    """Two followers in VA, one in VA2; one order each vault; every child parked."""
    await create_vault(w.uow(), tenant_id="tnt_a", vault_id="VA2", label="A2")
    f1, f2 = await w.follower(), await w.follower()
    f3 = await w.follower(vault_id="VA2")
    s1 = await w.submit(id="o1")
    s2 = await w.submit(id="o2", vault_id="VA2")
    assert s1.expansion is not None and s2.expansion is not None
    by_follower = {c.follower_id: c.fo_id
                   for c in (*s1.expansion.children, *s2.expansion.children)}
    await _park(w, [by_follower[f1], by_follower[f2], by_follower[f3]], at_offset=1)
    return {"f1": by_follower[f1], "f2": by_follower[f2], "f3": by_follower[f3],
            "F1": f1, "F3": f3}


async def test_dead_letters_are_listed_oldest_first_and_narrowed(world: World) -> None:
    ids = await _setup(world)

    async def listed(**kw: object) -> list[str]:
        rows = await list_dead_letters(world.uow(), tenant_id=kw.pop("tenant", "tnt_a"),
                                       since=None, limit=10, **kw)  # type: ignore[arg-type]
        return [r.fo_id for r in rows]
    assert await listed() == [ids["f1"], ids["f2"], ids["f3"]]
    assert await listed(vault_ids=frozenset({"VA2"})) == [ids["f3"]]
    assert await listed(follower_id=ids["F1"]) == [ids["f1"]]
    assert await listed(vault_ids=frozenset({"VA2"}), follower_id=ids["F1"]) == []
    assert await listed(tenant="tnt_b") == []


async def test_redelivery_by_id_requeues_and_sends_the_same_webhook_id(world: World) -> None:
    ids = await _setup(world)
    out = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=[ids["f1"], ids["f1"]],
                          since=None, actor="ops", clock=world.clock)
    assert (out.requeued, out.not_found) == ([ids["f1"]], [])
    child = await world.child(ids["f1"])
    assert (child.state, child.dead_lettered_at) == ("pending", None)
    await world.drain()
    assert [s.headers["webhook-id"] for s in world.sender.requests] == [ids["f1"]]
    assert json.loads(world.sender.requests[0].body)["id"] == ids["f1"]
    assert (await world.child(ids["f1"])).state == "ack"
    async with world.uow() as u:
        order = await u.manager_orders.get_unscoped(child.mo_id)
        events = await u.audit.for_entity("tnt_a", ids["f1"])
    assert order is not None and order.state == "completed"
    assert "redelivery_requested" in [e.action for e in events]


async def test_redelivery_outside_the_narrowing_is_reported_as_not_found(world: World
                                                                         ) -> None:
    ids = await _setup(world)
    out = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=[ids["f1"], ids["f3"],
                                                                  "nope"],
                          since=None, actor="ops", vault_ids=frozenset({"VA2"}),
                          clock=world.clock)
    assert (out.requeued, out.not_found) == ([ids["f3"]], [ids["f1"], "nope"])
    assert (await world.child(ids["f1"])).state == "dlq"
    other = await redeliver(world.uow(), tenant_id="tnt_b", fo_ids=[ids["f2"]], since=None,
                            actor="ops", clock=world.clock)
    assert (other.requeued, other.not_found) == ([], [ids["f2"]])


async def test_redelivering_everything_since_a_time_takes_only_the_newer(world: World
                                                                         ) -> None:
    ids = await _setup(world)
    f2 = await world.child(ids["f2"])
    out = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=None,
                          since=f2.dead_lettered_at, actor="ops", clock=world.clock)
    assert sorted(out.requeued) == sorted([ids["f2"], ids["f3"]])
    assert (await world.child(ids["f1"])).state == "dlq"
    async with world.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == 2


async def test_a_child_that_is_no_longer_dead_is_left_alone(world: World) -> None:
    ids = await _setup(world)
    first = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=[ids["f2"]], since=None,
                            actor="ops", clock=world.clock)
    again = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=[ids["f2"]], since=None,
                            actor="ops", clock=world.clock)
    assert first.requeued == [ids["f2"]]
    assert (again.requeued, again.not_found) == ([], [])
    async with world.uow() as u:
        assert await u.outbox.pending_count("mirror.dispatch") == 1


async def test_redelivery_reports_its_progress_row_by_row(world: World) -> None:
    ids = await _setup(world)
    seen: list[tuple[int, int]] = []
    out = await redeliver(world.uow(), tenant_id="tnt_a", fo_ids=None, since=None,
                          actor="ops", clock=world.clock,
                          on_progress=lambda done, total: seen.append((done, total)))
    assert sorted(out.requeued) == sorted([ids["f1"], ids["f2"], ids["f3"]])
    assert seen == [(0, 3), (1, 3), (2, 3), (3, 3)]
