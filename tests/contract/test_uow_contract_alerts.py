"""The unit of work's contract for operator alerts: channels (tenant-scoped) and the alert
queue (due, compare-and-set claims, what was sent and held back), on the fake, SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import T0, Db, at, seed_world, vault_row
from vanta.application.ports.alerts import AlertChannelRecord, AlertRecord

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)


def _channel(tenant: str, cid: str, created: float = 0, **extra: Any) -> dict[str, Any]:
    return {"channel_id": cid, "tenant_id": tenant, "kind": "webhook",
            "target": f"https://ops.example/{cid}", "secret_ref": f"ref-{cid}",
            "kinds": None, "created_at": at(created), "created_by": "alice", **extra}


def _alert(tenant: str, aid: str, created: float = 0, **extra: Any) -> dict[str, Any]:
    return {"alert_id": aid, "tenant_id": tenant, "kind": "dead_letter", "subject": "f1",
            "detail": {"fo_id": aid}, "created_at": at(created), **extra}


async def test_channels_are_listed_oldest_first_and_scoped_to_their_tenant(backend: Db) -> None:
    await seed_world(backend)

    async def add(u: Any) -> None:
        await u.alerts.add_channel(_channel("tnt_a", "c2", created=5, kinds=["dead_letter"]))
        await u.alerts.add_channel(_channel("tnt_a", "c1", created=1, kind="email",
                                            target="ops@example.com", secret_ref=None))
        await u.alerts.add_channel(_channel("tnt_b", "c3"))
    await backend.run(add)
    mine = await backend.read(lambda u: u.alerts.channels("tnt_a"))
    assert [c.channel_id for c in mine] == ["c1", "c2"]
    assert mine[1] == AlertChannelRecord("c2", "tnt_a", "webhook", "https://ops.example/c2",
                                         "ref-c2", ["dead_letter"], at(5), "alice")
    assert mine[0].wants("broker_lost_order") and not mine[1].wants("broker_lost_order")
    assert await backend.read(lambda u: u.alerts.get_channel("tnt_b", "c1")) is None
    assert not await backend.run(lambda u: u.alerts.delete_channel("tnt_b", "c1"))
    assert await backend.run(lambda u: u.alerts.delete_channel("tnt_a", "c1"))
    assert [c.channel_id for c in await backend.read(
        lambda u: u.alerts.channels("tnt_a"))] == ["c2"]


async def test_due_alerts_claims_and_lapsed_claims(backend: Db) -> None:
    await seed_world(backend)

    async def add(u: Any) -> None:
        await u.alerts.add_many([_alert("tnt_a", "a2", created=2),
                                 _alert("tnt_a", "a1", created=1)])  # one statement
        await u.alerts.add_many([])
        await u.alerts.add_many([_alert("tnt_b", "later", created=3, next_at=at(100))])
    await backend.run(add)
    due = await backend.read(lambda u: u.alerts.due(at(10), 10))
    assert [a.alert_id for a in due] == ["a1", "a2"]
    assert due[0] == AlertRecord("a1", "tnt_a", "dead_letter", "f1", {"fo_id": "a1"},
                                 "pending", at(1), 0, None, None, None)
    # a claim is a compare-and-set: the second one from the same state fails
    assert await backend.run(lambda u: u.alerts.update(
        "a1", expect_state="pending", state="sending", next_at=at(40)))
    assert not await backend.run(lambda u: u.alerts.update(
        "a1", expect_state="pending", state="sending", next_at=at(40)))
    assert [a.alert_id for a in await backend.read(
        lambda u: u.alerts.due(at(10), 10))] == ["a2"]
    # the claim lapses at next_at; a future next_at is not due yet
    assert [a.alert_id for a in await backend.read(
        lambda u: u.alerts.due(at(100), 10))] == ["a1", "a2", "later"]
    assert [a.alert_id for a in await backend.read(lambda u: u.alerts.due(at(100), 1))] == [
        "a1"]


async def test_sent_and_held_back_are_counted_per_tenant_and_kind(backend: Db) -> None:
    await seed_world(backend)

    async def add(u: Any) -> None:
        await u.alerts.add_many([_alert("tnt_a", "h0", created=0, state="suppressed")])
        await u.alerts.add_many([_alert("tnt_a", "s1", created=1, state="sent", sent_at=at(10))])
        await u.alerts.add_many([_alert("tnt_a", "s2", created=20, state="sent", sent_at=at(30),
                                  subject="f2", kind="endpoint_disabled")])
        await u.alerts.add_many([_alert("tnt_b", "s3", state="sent", sent_at=at(40))])
        await u.alerts.add_many([_alert("tnt_a", "h1", created=5, state="suppressed")])
        await u.alerts.add_many([_alert("tnt_a", "h2", created=15, state="suppressed")])
        await u.alerts.add_many([_alert("tnt_a", "h3", created=16, state="suppressed",
                                  kind="endpoint_disabled")])
        await u.alerts.add_many([_alert("tnt_b", "h4", created=16, state="suppressed")])
    await backend.run(add)
    sent = await backend.read(lambda u: u.alerts.sent_since("tnt_a", T0))
    assert sent == [("dead_letter", "f1", at(10)), ("endpoint_disabled", "f2", at(30))]
    assert await backend.read(lambda u: u.alerts.sent_since("tnt_a", at(10))) == [sent[1]]
    # after the last sent dead letter (raised at 1): h1 and h2, not h0; before 10: h1 only
    assert await backend.read(lambda u: u.alerts.held_back("tnt_a", "dead_letter",
                                                           at(100))) == 2
    assert await backend.read(lambda u: u.alerts.held_back("tnt_a", "dead_letter",
                                                           at(10))) == 1
    # endpoint_disabled: its last sent one was raised at 20, after h3
    assert await backend.read(lambda u: u.alerts.held_back("tnt_a", "endpoint_disabled",
                                                           at(100))) == 0
    # no sent one at all: every suppressed one counts
    assert await backend.read(lambda u: u.alerts.held_back("tnt_b", "broker_lost_order",
                                                           at(100))) == 0
    async def add_b(u: Any) -> None:
        await u.alerts.update("s3", expect_state="sent", state="suppressed")
    await backend.run(add_b)
    assert await backend.read(lambda u: u.alerts.held_back("tnt_b", "dead_letter",
                                                           at(100))) == 2


async def test_every_tenants_vaults_page_in_creation_order(backend: Db) -> None:
    """The scheduler's snapshots walk every vault: ``vaults.page_all`` (not tenant-scoped)."""
    await seed_world(backend)  # VA (tnt_a) and VB (tnt_b), both created at T0

    async def add(u: Any) -> None:
        await u.vaults.add(vault_row("tnt_b", "VC", created=5))
        await u.vaults.add(vault_row("tnt_a", "VD", created=1))
    await backend.run(add)
    first = await backend.read(lambda u: u.vaults.page_all(None, 3))
    assert [v.vault_id for v in first] == ["VA", "VB", "VD"]
    rest = await backend.read(lambda u: u.vaults.page_all(
        (first[-1].created_at, first[-1].vault_id), 3))
    assert [(v.vault_id, v.tenant_id) for v in rest] == [("VC", "tnt_b")]
