"""The unit of work's contract, part 1: transactions, unique keys, tenancy and the catalog
(vaults, followers, instruments, overlays, NAVs). Every case runs on the in-memory fake, SQLite
and PostgreSQL (see ``test_uow_contract_support``); orders, delivery and billing follow in the
other ``test_uow_contract_*`` files."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import typing
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import (
    T0,
    Db,
    at,
    follower_row,
    mo_row,
    seed_children,
    seed_world,
    tenant_row,
    vault_row,
)
from tests.fakes.memory_schema import SCHEMA
from tests.fakes.uow import MemoryStore, MemoryUnitOfWork
from vanta.adapters.db.tables import metadata
from vanta.application.ports.billing import BillingUnitOfWork
from vanta.application.ports.branding import BrandingUnitOfWork
from vanta.application.ports.crossrail import CrossRailUnitOfWork
from vanta.application.ports.records_catalog import FollowerRecord, VaultRecord
from vanta.application.ports.records_tenancy import TenantRecord
from vanta.application.ports.studio import StudioUnitOfWork
from vanta.application.ports.uow import Conflict, UnitOfWork
from vanta.domain.followers import FollowerMode, ScaleMode

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)

# -- transactions -------------------------------------------------------------------------------


async def test_committed_writes_are_kept(backend: Db) -> None:
    await backend.run(lambda u: u.tenants.add(tenant_row("tnt_a")))
    row = await backend.read(lambda u: u.tenants.get("tnt_a"))
    assert row == TenantRecord("tnt_a", "TNT_A", "active", T0)


async def test_leaving_the_block_without_commit_discards_the_writes(backend: Db) -> None:
    async with backend.uow() as u:
        await u.tenants.add(tenant_row("tnt_a"))
        assert await u.tenants.get("tnt_a") is not None  # its own writes are visible
    assert await backend.read(lambda u: u.tenants.get("tnt_a")) is None


async def test_an_exception_in_the_block_discards_the_writes(backend: Db) -> None:
    with pytest.raises(RuntimeError):
        async with backend.uow() as u:
            await u.tenants.add(tenant_row("tnt_a"))
            raise RuntimeError("boom")
    assert await backend.read(lambda u: u.tenants.get("tnt_a")) is None


async def test_rollback_discards_and_a_later_commit_keeps_only_later_writes(backend: Db) -> None:
    async with backend.uow() as u:
        await u.tenants.add(tenant_row("tnt_a"))
        await u.rollback()
        await u.tenants.add(tenant_row("tnt_b"))
        await u.commit()
    assert await backend.read(lambda u: u.tenants.get("tnt_a")) is None
    assert await backend.read(lambda u: u.tenants.get("tnt_b")) is not None


async def test_writes_after_a_commit_are_dropped_when_the_block_ends(backend: Db) -> None:
    async with backend.uow() as u:
        await u.tenants.add(tenant_row("tnt_a"))
        await u.commit()
        await u.tenants.add(tenant_row("tnt_b"))
    assert await backend.read(lambda u: u.tenants.get("tnt_a")) is not None
    assert await backend.read(lambda u: u.tenants.get("tnt_b")) is None


async def test_another_unit_of_work_does_not_see_uncommitted_writes(backend: Db) -> None:
    async with backend.uow() as writer:
        await writer.tenants.add(tenant_row("tnt_a"))
        async with backend.uow(readonly=True) as reader:
            assert await reader.tenants.get("tnt_a") is None
        await writer.commit()
    assert await backend.read(lambda u: u.tenants.get("tnt_a")) is not None


async def test_rows_returned_are_copies_the_caller_may_change(backend: Db) -> None:
    await seed_world(backend)
    row = await backend.read(lambda u: u.vaults.get("tnt_a", "VA"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        row.label = "changed"  # type: ignore[misc]
    row.rails["venues"].append("mutated")  # a JSON column is decoded afresh on every read
    again = await backend.read(lambda u: u.vaults.get("tnt_a", "VA"))
    assert again.label == "VA" and again.rails == {"venues": ["paper"]}


# -- unique keys ----------------------------------------------------------------------------------


async def _duplicate(db: Db, fn: Any) -> None:
    with pytest.raises(Conflict):
        await db.run(fn)


async def test_a_taken_primary_key_raises_conflict_and_keeps_the_first_row(backend: Db) -> None:
    await seed_world(backend)
    await _duplicate(backend, lambda u: u.tenants.add({**tenant_row("tnt_a"), "name": "dup"}))
    await _duplicate(backend, lambda u: u.vaults.add(vault_row("tnt_a", "VA")))
    await _duplicate(backend, lambda u: u.followers.add(follower_row("tnt_a", "VA", "FA1")))
    assert (await backend.read(lambda u: u.tenants.get("tnt_a"))).name == "TNT_A"


async def test_a_taken_unique_key_raises_conflict(backend: Db) -> None:
    await seed_world(backend)
    await backend.run(lambda u: u.manager_orders.add(mo_row("tnt_a", "VA", "MO1",
                                                            client_order_id="c1")))
    await _duplicate(backend, lambda u: u.manager_orders.add(
        mo_row("tnt_a", "VA", "MO2", client_order_id="c1")))
    # the same client order id in another vault is another order
    await backend.run(lambda u: u.manager_orders.add(mo_row("tnt_b", "VB", "MO3",
                                                            client_order_id="c1")))

    user = {"user_id": "u1", "tenant_id": "tnt_a", "email": "a@x", "role": "admin",
            "oidc_sub": "sub-1", "created_at": T0}
    await backend.run(lambda u: u.users.add(user))
    await _duplicate(backend, lambda u: u.users.add({**user, "user_id": "u2"}))
    # NULL never collides: two users without a subject
    await backend.run(lambda u: u.users.add({**user, "user_id": "u3", "oidc_sub": None}))
    await backend.run(lambda u: u.users.add({**user, "user_id": "u4", "oidc_sub": None}))
    assert await backend.read(lambda u: u.users.count("tnt_a")) == 3


async def test_outbox_keys_are_unique(backend: Db) -> None:
    await backend.run(lambda u: u.outbox.add_many("t", [("k1", {"a": 1})], T0))
    await _duplicate(backend, lambda u: u.outbox.add_many("t", [("k2", {}), ("k1", {})], T0))
    assert await backend.read(lambda u: u.outbox.pending_count("t")) == 1


def test_the_fake_has_every_table_and_column_of_the_schema() -> None:
    """Not parametrized: the fake's tables are the SQL tables (a migration that adds a
    column must add it to the fake too)."""
    for table in metadata.sorted_tables:
        spec = SCHEMA[table.name]
        assert spec.columns == tuple(c.name for c in table.columns), table.name
        assert spec.key == tuple(c.name for c in table.primary_key.columns), table.name
        uniques = {tuple(c.name for c in u.columns) for u in table.constraints
                   if u.__class__.__name__ == "UniqueConstraint"}
        uniques |= {(c.name,) for c in table.columns if c.unique}
        assert set(spec.unique) == uniques, table.name
    assert set(SCHEMA) == {t.name for t in metadata.sorted_tables}


def test_the_fake_offers_every_method_of_the_ports_with_the_same_parameters() -> None:
    """Every repository the two unit-of-work ports name, method by method (mypy agrees the
    fake satisfies both Protocols; this keeps it so when a port grows)."""
    uow = MemoryUnitOfWork(MemoryStore())
    asyncio.run(uow.__aenter__())
    checked = 0
    for port in (UnitOfWork, BillingUnitOfWork, BrandingUnitOfWork, StudioUnitOfWork,
                 CrossRailUnitOfWork):
        for name, prop in vars(port).items():
            if not isinstance(prop, property):
                continue
            repo_port = typing.get_type_hints(prop.fget)["return"]
            fake = getattr(uow, name)
            # with what the port inherits (its paging methods are declared apart)
            members = {k: v for base in reversed(repo_port.__mro__) for k, v in vars(base).items()}
            for meth, fn in members.items():
                if meth.startswith("_") or not callable(fn):
                    continue
                want = list(inspect.signature(fn).parameters)
                got = list(inspect.signature(getattr(type(fake), meth)).parameters)
                assert got == want, f"{name}.{meth}"
                checked += 1
    assert checked > 80  # every repository was reached


# -- tenancy --------------------------------------------------------------------------------------


async def test_users_and_invitations(backend: Db) -> None:
    await seed_world(backend)
    for i, tenant in enumerate(("tnt_a", "tnt_a", "tnt_b")):
        await backend.run(lambda u, i=i, t=tenant: u.users.add(
            {"user_id": f"u{i}", "tenant_id": t, "email": f"{i}@x", "role": "viewer",
             "oidc_sub": f"s{i}", "created_at": at(10 - i)}))
    assert [r.user_id for r in await backend.read(lambda u: u.users.list("tnt_a"))] \
        == ["u1", "u0"]  # by creation time
    assert (await backend.read(lambda u: u.users.by_sub("s2"))).tenant_id == "tnt_b"

    def inv(i: str, expires: float) -> dict[str, Any]:
        return {"invitation_id": i, "tenant_id": "tnt_a", "email": f"{i}@x", "role": "viewer",
                "token_hash": f"h-{i}", "created_by": "admin", "created_at": at(0),
                "expires_at": at(expires)}
    await backend.run(lambda u: u.invitations.add(inv("i1", 100)))
    await backend.run(lambda u: u.invitations.add(inv("i2", 5)))
    assert await backend.read(lambda u: u.invitations.pending("tnt_a", at(10))) == 1
    await backend.run(lambda u: u.invitations.accept("i1", "u0", at(11)))
    assert await backend.read(lambda u: u.invitations.pending("tnt_a", at(1))) == 1
    got = await backend.read(lambda u: u.invitations.by_token_hash("h-i1"))
    assert (got.accepted_at, got.user_id) == (at(11), "u0")
    await _duplicate(backend, lambda u: u.invitations.add({**inv("i3", 9), "token_hash": "h-i1"}))


async def test_subscriptions_one_per_tenant_newest_wins(backend: Db) -> None:
    await seed_world(backend)

    def sub(sid: str, ref: str | None) -> dict[str, Any]:
        return {"subscription_id": sid, "tenant_id": "tnt_a", "plan_id": "core",
                "status": "active", "entitlements": {"seats": 3}, "created_at": T0,
                "provider_ref": ref}
    await backend.run(lambda u: u.subscriptions.replace("tnt_a", sub("s1", "ref-1")))
    await backend.run(lambda u: u.subscriptions.replace("tnt_a", sub("s2", "ref-1")))
    cur = await backend.read(lambda u: u.subscriptions.current("tnt_a"))
    assert cur.subscription_id == "s2" and cur.provider == "manual"
    assert cur.entitlements == {"seats": 3}
    await backend.run(lambda u: u.subscriptions.update("s2", status="past_due"))
    assert (await backend.read(lambda u: u.subscriptions.by_provider_ref("ref-1"))).status \
        == "past_due"
    assert await backend.read(lambda u: u.subscriptions.current("tnt_b")) is None


# -- the catalog ----------------------------------------------------------------------------------


async def test_tenant_scoping_hides_another_tenants_rows(backend: Db) -> None:
    await seed_world(backend)
    assert await backend.read(lambda u: u.vaults.get("tnt_b", "VA")) is None
    assert await backend.read(lambda u: u.vaults.get_for_update("tnt_b", "VA")) is None
    assert await backend.read(lambda u: u.followers.get("tnt_b", "FA1")) is None
    assert await backend.read(lambda u: u.followers.list_for_vault("tnt_b", "VA")) == []
    assert (await backend.read(lambda u: u.followers.get_unscoped("FA1"))).tenant_id \
        == "tnt_a"
    # an update through the wrong tenant changes nothing
    await backend.run(lambda u: u.followers.update("tnt_b", "FA1", label="hijacked"))
    await backend.run(lambda u: u.vaults.set_maintenance("tnt_b", "VA", True))
    assert (await backend.read(lambda u: u.followers.get("tnt_a", "FA1"))).label == "FA1"
    assert await backend.read(lambda u: u.vaults.under_maintenance(["VA", "VB"])) == set()


async def test_catalog_reads_are_the_same_typed_records_on_every_backend(backend: Db) -> None:
    await seed_world(backend)
    want = FollowerRecord(
        follower_id="FA1", tenant_id="tnt_a", vault_id="VA", label="FA1",
        mode=FollowerMode.PROPORTIONAL, scale=Decimal("0.5"), max_pos_usd=None,
        kill_switch=False, webhook_url=None, hmac_key_ref=None, bridged_brokers=None,
        created_at=T0, updated_at=T0, scale_mode=ScaleMode.FIXED, nav_multiplier=Decimal(1),
        fractional=False, paused=False, paused_reason=None, protections=None, plan_id="core",
        overlay_opt_in=False, webhook_keys=None, webhook_disabled_at=None,
        webhook_disabled_reason=None)
    got = await backend.read(lambda u: u.followers.get("tnt_a", "FA1"))
    assert got == want and type(got.mode) is FollowerMode and got.created_at.tzinfo is not None
    for read in (lambda u: u.followers.list_for_vault("tnt_a", "VA"),
                 lambda u: u.followers.page_for_vault("tnt_a", "VA", None, 5)):
        assert [type(r) for r in await backend.read(read)] == [FollowerRecord] * 2
    many = await backend.read(lambda u: u.followers.get_many_unscoped(["FA1"]))
    assert many == {"FA1": want}
    assert await backend.read(lambda u: u.vaults.get("tnt_a", "VA")) == VaultRecord(
        "VA", "tnt_a", "VA", {"venues": ["paper"]}, [], {}, False, False, T0)
    assert await backend.read(lambda u: u.tenants.get("tnt_b")) \
        == TenantRecord("tnt_b", "TNT_B", "active", T0)


async def test_vaults_list_in_creation_order_and_maintenance(backend: Db) -> None:
    await backend.run(lambda u: u.tenants.add(tenant_row("tnt_a")))
    for vid, created in (("V2", 5), ("V1", 5), ("V0", 9)):
        await backend.run(lambda u, v=vid, c=created: u.vaults.add(vault_row("tnt_a", v, c)))
    rows = await backend.read(lambda u: u.vaults.list("tnt_a"))
    assert [r.vault_id for r in rows] == ["V1", "V2", "V0"]
    assert rows[0].public is False and rows[0].maintenance is False
    await backend.run(lambda u: u.vaults.set_maintenance("tnt_a", "V2", True))
    assert await backend.read(lambda u: u.vaults.under_maintenance(["V1", "V2", "nope"])) \
        == {"V2"}


async def test_follower_defaults_decimals_and_paging(backend: Db) -> None:
    await seed_world(backend)
    for f in ("FA0", "FA3", "FA4"):
        await backend.run(lambda u, f=f: u.followers.add(follower_row("tnt_a", "VA", f)))
    row = await backend.read(lambda u: u.followers.get("tnt_a", "FA1"))
    assert row.scale == Decimal("0.5") and str(row.scale) == "0.5"
    assert (row.scale_mode, row.nav_multiplier, row.plan_id) == (ScaleMode.FIXED, 1, "core")
    assert (row.kill_switch, row.paused, row.fractional) == (False, False, False)
    assert row.max_pos_usd is None and row.bridged_brokers is None
    page1 = await backend.read(lambda u: u.followers.page_for_vault("tnt_a", "VA", None, 2))
    page2 = await backend.read(lambda u: u.followers.page_for_vault("tnt_a", "VA", "FA1", 2))
    page3 = await backend.read(lambda u: u.followers.page_for_vault("tnt_a", "VA", "FA3", 2))
    assert [[r.follower_id for r in p] for p in (page1, page2, page3)] \
        == [["FA0", "FA1"], ["FA2", "FA3"], ["FA4"]]
    await backend.run(lambda u: u.followers.update("tnt_a", "FA1", kill_switch=True,
                                                   protections={"max_dd": "0.2"},
                                                   scale=Decimal("1.250")))
    row = await backend.read(lambda u: u.followers.get("tnt_a", "FA1"))
    assert (row.kill_switch, row.protections, str(row.scale)) \
        == (True, {"max_dd": "0.2"}, "1.25")
    many = await backend.read(lambda u: u.followers.get_many_unscoped(["FA1", "FB1", "x"]))
    assert set(many) == {"FA1", "FB1"}


async def test_instruments_upsert_and_list_order(backend: Db) -> None:
    def inst(symbol: str, venue: str, step: str) -> dict[str, Any]:
        return {"symbol": symbol, "venue": venue, "lot_step": Decimal(step),
                "min_qty": Decimal("1"), "min_notional": Decimal("0"), "updated_at": T0}
    await backend.run(lambda u: u.instruments.upsert(inst("MSFT", "paper", "1")))
    await backend.run(lambda u: u.instruments.upsert(inst("AAPL", "paper", "1")))
    await backend.run(lambda u: u.instruments.upsert(inst("AAPL", "alpaca", "0.001")))
    await backend.run(lambda u: u.instruments.upsert(inst("AAPL", "paper", "0.10")))
    rows = await backend.read(lambda u: u.instruments.list())
    assert [(r.venue, r.symbol) for r in rows] \
        == [("alpaca", "AAPL"), ("paper", "AAPL"), ("paper", "MSFT")]
    got = await backend.read(lambda u: u.instruments.get("AAPL", "paper"))
    assert got.lot_step == Decimal("0.1") and got.fractional_step is None


async def test_overlays_activity_revert_once(backend: Db) -> None:
    await seed_world(backend)

    def ov(oid: str, applied: float, expires: float, vault: str = "VA",
           tenant: str = "tnt_a") -> dict[str, Any]:
        return {"overlay_id": oid, "tenant_id": tenant, "vault_id": vault, "kind": "flip",
                "params": {"amplify": "0.5"}, "actor": "ops", "applied_at": at(applied),
                "expires_at": at(expires), "state": "active"}
    for row in (ov("o2", 0, 100), ov("o1", 10, 50), ov("o3", 20, 30), ov("o4", 0, 40, "VB",
                                                                         "tnt_b")):
        await backend.run(lambda u, r=row: u.overlays.add(r))
    active = await backend.read(lambda u: u.overlays.active("VA", at(25)))
    assert [r.overlay_id for r in active] == ["o1", "o2", "o3"]
    at30 = await backend.read(lambda u: u.overlays.active("VA", at(30)))
    assert [r.overlay_id for r in at30] == ["o1", "o2"]  # expires_at is exclusive
    listed = await backend.read(lambda u: u.overlays.list("tnt_a", "VA"))
    assert [r.overlay_id for r in listed] == ["o2", "o1", "o3"]
    assert await backend.read(lambda u: u.overlays.list("tnt_b", "VA")) == []
    due = await backend.read(lambda u: u.overlays.due_for_revert(at(60)))
    assert [r.overlay_id for r in due] == ["o3", "o4", "o1"]
    assert await backend.run(lambda u: u.overlays.mark_reverted("o3", at(61))) is True
    assert await backend.run(lambda u: u.overlays.mark_reverted("o3", at(62))) is False
    row = (await backend.read(lambda u: u.overlays.list("tnt_a", "VA")))[2]
    assert (row.state, row.reverted_at, row.params) \
        == ("reverted", at(61), {"amplify": "0.5"})


async def test_nav_history_up_to_asof_oldest_first(backend: Db) -> None:
    await seed_world(backend)
    for eid, secs, nav in (("FA1", 20, "110"), ("FA1", 10, "100.50"), ("FA2", 5, "7"),
                           ("FA1", 30, "120"), ("VA", 10, "1000")):
        kind = "vault" if eid == "VA" else "follower"
        await backend.run(lambda u, e=eid, s=secs, n=nav, k=kind: u.navs.add(
            {"tenant_id": "tnt_a", "entity": k, "entity_id": e, "nav": Decimal(n),
             "as_of": at(s), "source": "report"}))
    hist = await backend.read(lambda u: u.navs.history("follower", ["FA1", "FA2", "FA9"],
                                                       at(20)))
    assert hist == {"FA1": [(at(10), Decimal("100.5")), (at(20), Decimal("110"))],
                    "FA2": [(at(5), Decimal("7"))]}


# -- concurrency and refusals ---------------------------------------------------------------------


async def test_two_concurrent_compare_and_sets_move_a_child_once(backend: Db) -> None:
    await seed_world(backend)
    await seed_children(backend)

    async def move(to: str) -> bool:
        async with backend.uow() as u:
            moved = await u.child_orders.update("fo1", expect_state="pending", state=to)
            await asyncio.sleep(0.01)  # hold the row while the other tries
            await u.commit()
            return bool(moved)
    results = await asyncio.gather(move("sent"), move("cancelled"))
    assert sorted(results) == [False, True]
    row = await backend.read(lambda u: u.child_orders.get_unscoped("fo1"))
    assert row.state == ("sent" if results[0] else "cancelled")


async def test_concurrent_claims_never_lease_a_row_twice(backend: Db) -> None:
    await backend.run(lambda u: u.outbox.add_many(
        "t", [(f"k{i}", {}) for i in range(6)], T0))

    async def claim() -> list[str]:
        async with backend.uow() as u:
            rows = await u.outbox.claim_due("t", at(1), 4, timedelta(seconds=30))
            await asyncio.sleep(0.01)
            await u.commit()
            return [r.key for r in rows]
    a, b = await asyncio.gather(claim(), claim())
    assert not set(a) & set(b)
    assert len(a) + len(b) <= 6 and max(len(a), len(b)) == 4


async def test_refused_writes_other_than_unique_keys_are_not_conflicts(backend: Db) -> None:
    """A dangling foreign key or a missing NOT NULL column is a bug, not a lost race."""
    await backend.run(lambda u: u.tenants.add(tenant_row("tnt_a")))
    for bad in (vault_row("tnt_nope", "V1"),  # no such tenant
                {k: v for k, v in vault_row("tnt_a", "V2").items() if k != "label"}):
        with pytest.raises(Exception) as e:  # the driver's own error on SQL
            await backend.run(lambda u, row=bad: u.vaults.add(row))
        assert not isinstance(e.value, Conflict)
    assert await backend.read(lambda u: u.vaults.list("tnt_a")) == []
