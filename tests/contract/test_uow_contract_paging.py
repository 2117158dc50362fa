"""The unit of work's contract, paging: keyset pages of vaults, overlays, users, instruments
and dead letters visit every row exactly once, in the list's order, on the fake, SQLite and
PostgreSQL. Ties on the timestamp are broken by the id, so equal times never skip a row."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import (
    T0,
    Db,
    at,
    seed_children,
    seed_world,
    tenant_row,
    vault_row,
)
from vanta.domain.orders import ChildOrderState

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)

Read = Callable[[Any, Any, int], Awaitable[Sequence[Any]]]


async def _walk(db: Db, read: Read, key: Callable[[Any], Any], ident: Callable[[Any], str],
                limit: int) -> list[str]:
    """All pages of ``limit`` rows, each next one read after the last row's ``key``."""
    seen: list[str] = []
    after = None
    while True:
        rows = await db.read(lambda u, a=after: read(u, a, limit))
        seen += [ident(r) for r in rows]
        if len(rows) < limit:
            return seen
        after = key(rows[-1])


async def test_vaults_page_in_creation_order_with_ties(backend: Db) -> None:
    await backend.run(lambda u: u.tenants.add(tenant_row("tnt_a")))
    await backend.run(lambda u: u.tenants.add(tenant_row("tnt_b")))
    for vid, created in (("V2", 5), ("V1", 5), ("V0", 9), ("V3", 5), ("V9", 1)):
        await backend.run(lambda u, v=vid, c=created: u.vaults.add(vault_row("tnt_a", v, c)))
    await backend.run(lambda u: u.vaults.add(vault_row("tnt_b", "VX", 5)))
    whole = [r.vault_id for r in await backend.read(lambda u: u.vaults.list("tnt_a"))]
    assert whole == ["V9", "V1", "V2", "V3", "V0"]
    for limit in (1, 2, 3, 10):
        got = await _walk(backend, lambda u, a, n: u.vaults.page("tnt_a", a, n),
                          lambda r: (r.created_at, r.vault_id), lambda r: r.vault_id, limit)
        assert got == whole


async def test_overlays_page_in_applied_order(backend: Db) -> None:
    await seed_world(backend)

    def ov(oid: str, applied: float, vault: str = "VA", tenant: str = "tnt_a"
           ) -> dict[str, Any]:
        return {"overlay_id": oid, "tenant_id": tenant, "vault_id": vault, "kind": "flip",
                "params": {}, "actor": "ops", "applied_at": at(applied),
                "expires_at": at(100), "state": "active"}
    for row in (ov("o2", 0), ov("o1", 10), ov("o3", 0), ov("o4", 5), ov("o5", 0, "VB", "tnt_b")):
        await backend.run(lambda u, r=row: u.overlays.add(r))
    for limit in (1, 2, 4):
        got = await _walk(backend, lambda u, a, n: u.overlays.page("tnt_a", "VA", a, n),
                          lambda r: (r.applied_at, r.overlay_id), lambda r: r.overlay_id,
                          limit)
        assert got == ["o2", "o3", "o4", "o1"]
    assert await backend.read(lambda u: u.overlays.page("tnt_b", "VA", None, 10)) == []


async def test_users_page_in_creation_order_with_ties(backend: Db) -> None:
    await seed_world(backend)
    for uid, tenant, created in (("u3", "tnt_a", 5), ("u1", "tnt_a", 5), ("u0", "tnt_a", 9),
                                 ("u2", "tnt_a", 1), ("u9", "tnt_b", 5)):
        await backend.run(lambda u, i=uid, t=tenant, c=created: u.users.add(
            {"user_id": i, "tenant_id": t, "email": f"{i}@x", "role": "viewer",
             "oidc_sub": f"s-{i}", "created_at": at(c)}))
    for limit in (1, 2, 3):
        got = await _walk(backend, lambda u, a, n: u.users.page("tnt_a", a, n),
                          lambda r: (r.created_at, r.user_id), lambda r: r.user_id, limit)
        assert got == ["u2", "u1", "u3", "u0"]


async def test_instruments_page_by_venue_then_symbol(backend: Db) -> None:
    for venue, symbol in (("paper", "MSFT"), ("paper", "AAPL"), ("alpaca", "AAPL"),
                          ("alpaca", "ZZ"), ("binance", "BTC/USDT")):
        await backend.run(lambda u, v=venue, s=symbol: u.instruments.upsert(
            {"symbol": s, "venue": v, "lot_step": Decimal("1"), "min_qty": Decimal("1"),
             "min_notional": Decimal("0"), "updated_at": T0}))
    want = ["alpaca:AAPL", "alpaca:ZZ", "binance:BTC/USDT", "paper:AAPL", "paper:MSFT"]
    for limit in (1, 2, 5):
        got = await _walk(backend, lambda u, a, n: u.instruments.page(a, n),
                          lambda r: (r.venue, r.symbol), lambda r: f"{r.venue}:{r.symbol}",
                          limit)
        assert got == want


async def test_dead_letters_page_in_dead_letter_order_and_stay_narrowed(backend: Db) -> None:
    await seed_world(backend)
    dlq = ChildOrderState.DLQ
    await seed_children(backend, {"fo1": dlq, "fo2": dlq, "fo3": dlq, "fo4": dlq})
    for fo, secs in (("fo1", 30), ("fo2", 10), ("fo3", 10), ("fo4", 20)):
        await backend.run(lambda u, f=fo, s=secs: u.child_orders.update(
            f, expect_state="dlq", dead_lettered_at=at(s)))

    def reader(**narrow: Any) -> Read:
        return lambda u, a, n: u.child_orders.dead_letters("tnt_a", since=None, limit=n,
                                                           after=a, **narrow)
    for limit in (1, 2, 3):
        got = await _walk(backend, reader(), lambda r: (r.dead_lettered_at, r.fo_id),
                          lambda r: r.fo_id, limit)
        assert got == ["fo2", "fo3", "fo4", "fo1"]
        mine = await _walk(backend, reader(follower_id="FA1"),
                           lambda r: (r.dead_lettered_at, r.fo_id), lambda r: r.fo_id, limit)
        assert mine == ["fo3", "fo1"]  # fo1, fo3 are FA1's
