"""The unit of work's contract, part 3: the outbox (claims, leases, take, complete, release,
reschedule, requeue), delivery attempts and the audit log's hash chain (batch events and their
records too), on the fake, SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import (
    CLOCK_AT,
    T0,
    Db,
    at,
    seed_children,
    seed_world,
)
from vanta.application.ports.clock import iso
from vanta.application.ports.delivery import OutboxLease
from vanta.application.ports.records_orders import AttemptRecord, AuditEventRecord, OutboxRecord
from vanta.domain.audit import GENESIS_HASH, verify_chain
from vanta.domain.audit_batch import batches_problems

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)

LEASE = timedelta(seconds=30)


async def _outbox(db: Db, keys: list[str], topic: str = "mirror.dispatch",
                  now: Any = T0) -> None:
    await db.run(lambda u: u.outbox.add_many(topic, [(k, {"fo_id": k}) for k in keys], now))


async def test_claim_leases_due_rows_oldest_first_and_counts_attempts(backend: Db) -> None:
    await _outbox(backend, ["k1", "k2"], now=at(1))
    await _outbox(backend, ["k0"], now=at(0))
    await _outbox(backend, ["other"], topic="elsewhere", now=at(0))
    await _outbox(backend, ["later"], now=at(100))
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(10), 2, LEASE))
    assert [r.key for r in got] == ["k0", "k1"]
    assert all(r.attempts == 1 and r.locked_until == at(40) for r in got)
    assert got[0].payload == {"fo_id": "k0"}
    assert all(type(r) is OutboxRecord for r in got)
    # leased rows are not due again until their lease lapses
    again = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(20), 10,
                                                           LEASE))
    assert [r.key for r in again] == ["k2"]
    lapsed = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(41), 10,
                                                            LEASE))
    assert [(r.key, r.attempts) for r in lapsed] == [("k0", 2), ("k1", 2)]
    assert await backend.read(lambda u: u.outbox.pending_count("mirror.dispatch")) == 4


async def test_due_rescheduled_rows_are_claimed_ahead_of_older_first_attempts(
        backend: Db) -> None:
    await _outbox(backend, ["r"], now=at(0))
    first = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 1, LEASE))
    await backend.run(lambda u: u.outbox.reschedule_many([(first[0].id, at(5))]))
    await _outbox(backend, [f"b{i}" for i in range(5)], now=at(2))  # a backlog, due first
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(6), 2, LEASE))
    assert [r.key for r in got] == ["r", "b0"]
    early = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(6), 10,
                                                           LEASE))
    assert [r.key for r in early] == ["b1", "b2", "b3", "b4"]


async def test_an_uncommitted_claim_leases_nothing(backend: Db) -> None:
    await _outbox(backend, ["k1"])
    async with backend.uow() as u:
        assert len(await u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE)) == 1
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    assert [(r.key, r.attempts) for r in got] == [("k1", 1)]


async def test_complete_release_and_reschedule(backend: Db) -> None:
    await _outbox(backend, ["k1", "k2", "k3", "k4"])
    rows = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    ids = {r.key: r.id for r in rows}
    await backend.run(lambda u: u.outbox.complete(ids["k1"], at(2)))
    await backend.run(lambda u: u.outbox.complete_many([ids["k2"]], at(2)))
    await backend.run(lambda u: u.outbox.release_many([ids["k3"], ids["k1"]]))
    await backend.run(lambda u: u.outbox.reschedule_many([(ids["k4"], at(60))]))
    assert await backend.read(lambda u: u.outbox.pending_count("mirror.dispatch")) == 2
    # released: due at once (attempt counted when claimed again); rescheduled: due at 60
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(3), 10, LEASE))
    assert [(r.key, r.attempts) for r in got] == [("k3", 2)]
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(20), 10, LEASE))
    assert got == []  # k3 is leased until 33, k4 is not due before 60
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(60), 10, LEASE))
    # the rescheduled row first (a retry is not queued behind the backlog)
    assert [(r.key, r.available_at) for r in got] == [("k4", at(60)), ("k3", T0)]
    # complete_many / release_many / reschedule_many with nothing do nothing
    await backend.run(lambda u: u.outbox.complete_many([], at(9)))
    await backend.run(lambda u: u.outbox.release_many([]))
    await backend.run(lambda u: u.outbox.reschedule_many([]))


async def test_take_renews_only_the_lease_a_message_names(backend: Db) -> None:
    await _outbox(backend, ["k1", "k2", "k3", "k4"])
    rows = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    by = {r.key: r for r in rows}
    k1, k2, k3, k4 = (by[k] for k in ("k1", "k2", "k3", "k4"))
    await backend.run(lambda u: u.outbox.complete(k4.id, at(2)))
    leases = [OutboxLease(k1.id, k1.attempts, k1.locked_until),  # exact: taken
              OutboxLease(k2.id, k2.attempts + 1),  # an older lease's number: not
              OutboxLease(k3.id),  # no number: any live lease
              OutboxLease(k4.id)]  # done: never
    got = await backend.run(lambda u: u.outbox.take_many(leases, at(5), LEASE))
    assert sorted(r.key for r in got) == ["k1", "k3"]
    assert all(r.locked_until == at(35) for r in got)
    # renewing moved the expiry: a second copy of k1's message no longer names a lease
    assert await backend.run(lambda u: u.outbox.take_many(leases[:1], at(6), LEASE)) == []
    numbered = [OutboxLease(k1.id, k1.attempts)]  # number only: still matches
    assert [r.key for r in await backend.run(
        lambda u: u.outbox.take_many(numbered, at(7), LEASE))] == ["k1"]
    assert await backend.run(lambda u: u.outbox.take_many([], at(7), LEASE)) == []


async def test_release_unclaimed_hands_back_only_leases_nobody_took(backend: Db) -> None:
    await _outbox(backend, ["k1", "k2", "k3"])
    rows = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    by = {r.key: r for r in rows}
    exact = {k: OutboxLease(r.id, r.attempts, r.locked_until) for k, r in by.items()}
    # k2 was taken by a consumer (its lease renewed), k3 delivered: both are kept
    await backend.run(lambda u: u.outbox.take_many([exact["k2"]], at(2), LEASE))
    await backend.run(lambda u: u.outbox.complete(by["k3"].id, at(2)))
    released = await backend.run(lambda u: u.outbox.release_unclaimed(list(exact.values())))
    assert released == 1
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(3), 10, LEASE))
    assert [(r.key, r.attempts) for r in got] == [("k1", 2)]
    assert await backend.run(lambda u: u.outbox.release_unclaimed([])) == 0


async def test_renew_keeps_only_leases_still_held_under_their_number(backend: Db) -> None:
    await _outbox(backend, ["k1", "k2", "k3"])
    rows = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    by = {r.key: r for r in rows}
    await backend.run(lambda u: u.outbox.complete(by["k3"].id, at(2)))
    held = [(by["k1"].id, by["k1"].attempts), (by["k2"].id, by["k2"].attempts + 1),
            (by["k3"].id, by["k3"].attempts)]
    got = await backend.run(lambda u: u.outbox.renew_many(held, at(20), LEASE))
    assert got == [by["k1"].id]  # k2: another lease's number; k3: done
    # renewed: not due at the old expiry (k2, not renewed, is), due after the new one
    lapsed = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(40), 10,
                                                            LEASE))
    assert [r.key for r in lapsed] == ["k2"]
    again = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(51), 10,
                                                           LEASE))
    assert [r.key for r in again] == ["k1"]
    # leased again under a new number: the old holder's heartbeat no longer renews it
    assert await backend.run(lambda u: u.outbox.renew_many(held[:1], at(52), LEASE)) == []
    assert await backend.run(lambda u: u.outbox.renew_many([], at(52), LEASE)) == []


async def test_hand_over_moves_a_claim_the_bus_holds_unless_a_consumer_took_it(
        backend: Db) -> None:
    await _outbox(backend, ["k1", "k2"])
    rows = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10,
                                                          timedelta(seconds=8)))
    by = {r.key: r for r in rows}
    k1, k2 = by["k1"], by["k2"]
    claimed = {k: OutboxLease(r.id, r.attempts, r.locked_until) for k, r in by.items()}
    # the message names the handed-over expiry and the claim's: a consumer may take it
    # before the hand-over is written (k2) or after (k1)
    msg = {k: OutboxLease(r.id, r.attempts, at(121), r.locked_until) for k, r in by.items()}
    assert [r.key for r in await backend.run(
        lambda u: u.outbox.take_many([msg["k2"]], at(2), LEASE))] == ["k2"]
    assert await backend.run(lambda u: u.outbox.hand_over(list(claimed.values()),
                                                           at(121))) == 1
    assert await backend.run(
        lambda u: u.outbox.claim_due("mirror.dispatch", at(30), 10, LEASE)) == []
    got = await backend.run(lambda u: u.outbox.take_many([msg["k1"]], at(61), LEASE))
    assert [(r.key, r.locked_until) for r in got] == [("k1", at(91))]
    # a second copy of either message finds the lease moved
    assert await backend.run(lambda u: u.outbox.take_many(list(msg.values()), at(62),
                                                           LEASE)) == []
    assert k1.id != k2.id


async def test_take_ignores_rows_whose_lease_was_handed_back(backend: Db) -> None:
    await _outbox(backend, ["k1"])
    [row] = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    await backend.run(lambda u: u.outbox.release_many([row.id]))
    assert await backend.run(lambda u: u.outbox.take_many([OutboxLease(row.id)], at(2),
                                                          LEASE)) == []


async def test_requeue_makes_a_done_row_due_or_creates_it(backend: Db) -> None:
    await _outbox(backend, ["k1"])
    [row] = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(1), 10, LEASE))
    await backend.run(lambda u: u.outbox.complete(row.id, at(2)))
    await backend.run(lambda u: u.outbox.requeue("k1", at(50)))
    await backend.run(lambda u: u.outbox.requeue("fresh", at(50)))
    assert await backend.read(lambda u: u.outbox.pending_count("mirror.dispatch")) == 2
    got = await backend.run(lambda u: u.outbox.claim_due("mirror.dispatch", at(50), 10, LEASE))
    assert sorted((r.key, r.attempts, r.payload["fo_id"]) for r in got) \
        == [("fresh", 1, "fresh"), ("k1", 2, "k1")]


async def test_attempts_settle_add_and_mark_lost(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend)

    def attempt(fo: str, no: int, outcome: str = "in_flight") -> dict[str, Any]:
        return {"fo_id": fo, "attempt_no": no, "started_at": at(no), "status_code": None,
                "latency_ms": 0, "response_excerpt": None, "error": None, "outcome": outcome}
    await backend.run(lambda u: u.attempts.add_many([attempt("fo1", 1), attempt("fo2", 1),
                                                     attempt("fo3", 1)]))
    await backend.run(lambda u: u.attempts.settle_many([
        {**attempt("fo1", 1), "status_code": 200, "latency_ms": 12, "outcome": "ack"},
        {**attempt("fo1", 2), "status_code": 503, "latency_ms": 7, "error": "busy",
         "outcome": "retry"}]))
    await backend.run(lambda u: u.attempts.mark_lost_many(["fo1", "fo2"]))
    await backend.run(lambda u: u.attempts.mark_lost("fo3"))
    rows = await backend.read(lambda u: u.attempts.list("fo1"))
    assert all(type(r) is AttemptRecord for r in rows)
    assert [(r.attempt_no, r.status_code, r.latency_ms, r.outcome) for r in rows] \
        == [(1, 200, 12, "ack"), (2, 503, 7, "retry")]
    lost = (await backend.read(lambda u: u.attempts.list("fo2")))[0]
    assert lost.outcome == "lost" and "stopped" in lost.error
    assert (await backend.read(lambda u: u.attempts.list("fo3")))[0].outcome == "lost"
    assert await backend.read(lambda u: u.attempts.list("fo4")) == []
    # the tenant's attempts in a time window, oldest first, bounded
    recent = await backend.read(lambda u: u.attempts.started_since("tnt_a", at(2), 10))
    assert [(r.fo_id, r.attempt_no) for r in recent] == [("fo1", 2)]
    every = await backend.read(lambda u: u.attempts.started_since("tnt_a", at(0), 2))
    assert len(every) == 2 and every[0].started_at <= every[1].started_at
    assert await backend.read(lambda u: u.attempts.started_since("tnt_b", at(0), 10)) \
        == []
    many = await backend.read(lambda u: u.attempts.list_many(["fo1", "fo3", "fo4"]))
    assert {k: [(r.attempt_no, r.outcome) for r in v] for k, v in many.items()} == {
        "fo1": [(1, "ack"), (2, "retry")], "fo3": [(1, "lost")]}


async def test_audit_appends_keep_one_verifiable_chain(backend: Db) -> None:
    ev1 = await backend.run(lambda u: u.audit.append(
        entity="vault", entity_id="VA", action="create", actor="ops", payload={"a": 1},
        tenant_id="tnt_a"))
    assert (ev1.seq, ev1.prev_hash, ev1.ts) == (1, GENESIS_HASH, iso(CLOCK_AT))
    # a rolled-back append leaves no gap in the chain
    async with backend.uow() as u:
        await u.audit.append(entity="vault", entity_id="VA", action="lost", actor="ops",
                             payload={}, tenant_id="tnt_a")
    await backend.run(lambda u: u.audit.append_many([
        {"entity": "follower", "entity_id": "F1", "action": "patch", "actor": "u",
         "payload": {"b": [1, 2]}, "tenant_id": "tnt_a"},
        {"entity": "request", "entity_id": "r1", "action": "get", "actor": "u",
         "payload": {}, "tenant_id": "tnt_b"}]))
    await backend.run(lambda u: u.audit.append_many([]))
    ev4 = await backend.run(lambda u: u.audit.append(
        entity="vault", entity_id="VA", action="maintenance", actor="ops", payload={},
        tenant_id=None))
    events = await backend.read(lambda u: u.audit.all())
    assert [e.seq for e in events] == [1, 2, 3, 4] and events[3] == ev4
    assert events[1].prev_hash == ev1.hash and events[1].payload == {"b": [1, 2]}
    assert verify_chain(events) is None
    feed = await backend.read(lambda u: u.audit.feed("tnt_a", 0, ["vault", "follower"], 10))
    assert all(type(r) is AuditEventRecord and r.tenant_id == "tnt_a" for r in feed)
    assert [r.seq for r in feed] == [1, 2]
    assert [r.seq for r in await backend.read(
        lambda u: u.audit.feed("tnt_a", 1, ["vault", "follower"], 10))] == [2]
    assert [r.action for r in await backend.read(
        lambda u: u.audit.for_entity("tnt_a", "VA"))] == ["create"]
    assert await backend.read(lambda u: u.audit.for_entity("tnt_b", "VA")) == []


async def test_audit_events_carry_their_tenant_and_version_and_the_head_is_read(
        backend: Db) -> None:
    assert await backend.read(lambda u: u.audit.head()) is None
    await backend.run(lambda u: u.audit.append(
        entity="manager_order", entity_id="mo1", action="received", actor="ops",
        payload={}, tenant_id="tnt_a"))
    await backend.run(lambda u: u.audit.append_many([
        {"entity": "follower_order", "entity_id": e, "action": "created:pending",
         "actor": "o", "payload": {}, "tenant_id": t}
        for e, t in (("fo1", "tnt_a"), ("fo2", "tnt_a"), ("fo3", "tnt_b"))]))
    events = await backend.read(lambda u: u.audit.all())
    assert all(e.hash_v == 2 for e in events)
    assert [e.tenant_id for e in events] == ["tnt_a", "tnt_a", "tnt_a", "tnt_b"]
    assert await backend.read(lambda u: u.audit.head()) == (4, events[-1].hash)
    assert [e.seq for e in await backend.read(lambda u: u.audit.since(3))] == [3, 4]
    mine = await backend.read(lambda u: u.audit.for_entities("tnt_a", ["fo2", "mo1", "fo3"]))
    assert [(r.seq, r.entity_id, r.hash_v) for r in mine] == [(1, "mo1", 2), (3, "fo2", 2)]
    assert verify_chain(events) is None


async def test_a_batch_is_one_event_per_tenant_with_its_records_as_leaves(backend: Db) -> None:
    await backend.run(lambda u: u.audit.append(
        entity="manager_order", entity_id="mo1", action="received", actor="ops",
        payload={}, tenant_id="tnt_a"))
    await backend.run(lambda u: u.audit.append_batch([
        {"entity": "follower_order", "entity_id": e, "action": a, "payload": {"status": s},
         "tenant_id": t}
        for e, a, s, t in (("fo1", "dispatch:ack", 200, "tnt_a"),
                           ("fo2", "dispatch:retry", 503, "tnt_b"),
                           ("fo3", "dispatch:ack", 200, "tnt_a"))], actor="dispatcher"))
    await backend.run(lambda u: u.audit.append_batch([], actor="dispatcher"))
    # a rolled-back batch leaves neither an event nor a record
    async with backend.uow() as u:
        await u.audit.append_batch([{"entity": "follower_order", "entity_id": "fo9",
                                     "action": "dispatch:ack", "payload": {},
                                     "tenant_id": "tnt_a"}], actor="dispatcher")
    events = await backend.read(lambda u: u.audit.all())
    assert [(e.seq, e.action, e.tenant_id) for e in events] == [
        (1, "received", "tnt_a"), (2, "dispatch:batch", "tnt_a"), (3, "dispatch:batch", "tnt_b")]
    assert [e.payload["size"] for e in events[1:]] == [2, 1]
    assert events[1].payload["actions"] == {"dispatch:ack": 2}
    assert verify_chain(events) is None
    leaves = await backend.read(lambda u: u.audit.all_leaves())
    assert batches_problems(events, leaves) == []
    assert [(r.idx, r.entity_id, r.seq) for r in leaves[events[1].event_id]] == [
        (0, "fo1", 2), (1, "fo3", 2)]
    mine = await backend.read(lambda u: u.audit.leaves_for("tnt_a", ["fo3", "fo2", "fo9"]))
    assert [(r.entity_id, r.action, r.leaf().payload) for r in mine] == [
        ("fo3", "dispatch:ack", {"status": 200})]
    assert await backend.read(lambda u: u.audit.leaves_for("tnt_b", ["fo1"])) == []
    of = await backend.read(lambda u: u.audit.leaves_of([events[2].event_id, "unknown"]))
    assert [r.entity_id for r in of[events[2].event_id]] == ["fo2"] and of["unknown"] == []
    by_id = await backend.read(lambda u: u.audit.by_ids([events[2].event_id, "unknown"]))
    assert list(by_id) == [events[2].event_id] and by_id[events[2].event_id].seq == 3
