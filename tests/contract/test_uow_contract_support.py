"""The backends the unit-of-work contract runs on, and the rows its cases start from.

``backend`` is parametrized over the in-memory fake, SQLite (a migrated template file copied
per test) and PostgreSQL (one migrated throwaway database per module, emptied before each
test; skipped without a server, failing when CI=true). Each case gets a :class:`Db`."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from tests.conftest import POSTGRES_URL, require_service
from tests.fakes.uow import MemoryDatabase
from tests.pg import temp_database
from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.migrate import upgrade
from vanta.adapters.db.tables import metadata
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.orders import ChildOrder, ChildOrderState, Side

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
CLOCK_AT = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Db:
    name: str
    uow: Callable[..., UnitOfWork]  # (readonly=False)

    async def run(self, fn: Callable[[Any], Any]) -> Any:
        """``fn(uow)`` in one committed unit of work; its result."""
        async with self.uow() as u:
            out = await fn(u)
            await u.commit()
        return out

    async def read(self, fn: Callable[[Any], Any]) -> Any:
        async with self.uow() as u:
            return await fn(u)


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uow-template") / "vanta.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="module")
def pg_database() -> Iterator[str]:
    with temp_database(require_service("PostgreSQL", POSTGRES_URL)) as url:
        upgrade(url)
        yield url


async def _empty_postgres(engine: Any) -> None:
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    async with engine.begin() as c:
        await c.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["fake", "sqlite", "postgresql"])
def backend_source(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str | None]:
    """The backend and its URL, made outside the test's event loop (migrations run their
    own)."""
    if request.param == "sqlite":
        path = tmp_path / "vanta.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return "sqlite", f"sqlite+aiosqlite:///{path}"
    if request.param == "postgresql":
        return "postgresql", request.getfixturevalue("pg_database")
    return "fake", None


@pytest.fixture
async def backend(backend_source: tuple[str, str | None]) -> AsyncIterator[Db]:
    name, url = backend_source
    clock = lambda: CLOCK_AT  # noqa: E731
    if url is None:
        yield Db("fake", MemoryDatabase(clock).uow)
        return
    engine = make_engine(url)
    if name == "postgresql":
        await _empty_postgres(engine)
    try:
        yield Db(name, lambda readonly=False: SqlUnitOfWork(engine, clock, readonly=readonly))
    finally:
        await asyncio.wait_for(engine.dispose(), 10)


# -- rows -------------------------------------------------------------------------------------

def tenant_row(tenant_id: str) -> dict[str, Any]:
    return {"tenant_id": tenant_id, "name": tenant_id.upper(), "created_at": T0}


def vault_row(tenant_id: str, vault_id: str, created: float = 0) -> dict[str, Any]:
    return {"vault_id": vault_id, "tenant_id": tenant_id, "label": vault_id,
            "rails": {"venues": ["paper"]}, "personas": [], "risk_profile": {},
            "created_at": at(created)}


def follower_row(tenant_id: str, vault_id: str, follower_id: str, **extra: Any
                 ) -> dict[str, Any]:
    return {"follower_id": follower_id, "tenant_id": tenant_id, "vault_id": vault_id,
            "label": follower_id, "mode": "proportional", "scale": Decimal("0.50"),
            "created_at": T0, "updated_at": T0, **extra}


def mo_row(tenant_id: str, vault_id: str, mo_id: str, *, created: float = 0,
           client_order_id: str | None = None, side: str = "buy", qty: str = "10",
           symbol: str = "AAPL", source: str = "manager", ref_price: str | None = "100",
           state: str = "expanded") -> dict[str, Any]:
    return {"mo_id": mo_id, "tenant_id": tenant_id, "vault_id": vault_id,
            "client_order_id": client_order_id or f"c-{mo_id}", "source": source,
            "symbol": symbol, "venue": "paper", "side": side, "qty": Decimal(qty),
            "tif": "day", "ref_price": Decimal(ref_price) if ref_price else None,
            "meta": {"note": "x"}, "snapshot": {"followers": [1, 2]}, "state": state,
            "created_at": at(created)}


def child(mo_id: str, follower_id: str, fo_id: str, *, qty: str = "5", side: Side = Side.BUY,
          state: ChildOrderState = ChildOrderState.PENDING, symbol: str = "AAPL") -> ChildOrder:
    return ChildOrder(fo_id=fo_id, mo_id=mo_id, follower_id=follower_id, symbol=symbol,
                      venue="paper", side=side, qty=Decimal(qty), cap_applied=False,
                      state=state, skip_reason=None, sizing={"rule": "fixed"})


async def seed_world(db: Db) -> None:
    """Tenants A and B; vaults VA (A) and VB (B); followers FA1, FA2 in VA and FB1 in VB."""
    async def go(u: Any) -> None:
        for t in ("tnt_a", "tnt_b"):
            await u.tenants.add(tenant_row(t))
        await u.vaults.add(vault_row("tnt_a", "VA"))
        await u.vaults.add(vault_row("tnt_b", "VB"))
        for f in ("FA1", "FA2"):
            await u.followers.add(follower_row("tnt_a", "VA", f))
        await u.followers.add(follower_row("tnt_b", "VB", "FB1"))
    await db.run(go)


async def seed_children(db: Db, states: dict[str, ChildOrderState] | None = None) -> list[str]:
    """Manager order MO1 in VA with children fo1..fo4 (FA1, FA2, FA1, FA2)."""
    states = states or {}
    fos = ["fo1", "fo2", "fo3", "fo4"]

    async def go(u: Any) -> None:
        await u.manager_orders.add(mo_row("tnt_a", "VA", "MO1"))
        await u.child_orders.add_many(
            [child("MO1", "FA1" if i % 2 == 0 else "FA2", fo,
                   state=states.get(fo, ChildOrderState.PENDING)) for i, fo in enumerate(fos)],
            tenant_id="tnt_a", vault_id="VA", now=T0)
    await db.run(go)
    return fos
