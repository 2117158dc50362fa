"""The application's use cases over the in-memory unit of work: no SQLite, no network.

``world`` builds the services as the composition root does, but over the fakes in
``tests/fakes``: the memory database (``uow``), the settable clock (``clock``), the secret
store (``secrets``) and the scripted webhook sender (``sender``), each held to its real
adapter by a contract suite in ``tests/contract``."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.fakes.clock import FakeClock
from tests.fakes.secrets import FakeSecretStore
from tests.fakes.sender import FakeWebhookSender
from tests.fakes.uow import MemoryDatabase, MemoryUnitOfWork
from vanta.application import entitlements_cache, vault_cache
from vanta.application.dispatch import DispatchConfig, Dispatcher
from vanta.application.followers import register_follower
from vanta.application.manager_orders import Submitted, parse_order_input, submit_manager_order
from vanta.application.ports.records_orders import ChildOrderRecord
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan

START = datetime(2026, 4, 1, 14, 0, tzinfo=UTC)


@dataclass
class World:
    db: MemoryDatabase
    clock: FakeClock
    secrets: FakeSecretStore
    sender: FakeWebhookSender
    dispatcher: Dispatcher
    secrets_of: dict[str, str] = field(default_factory=dict)

    def uow(self, readonly: bool = False) -> MemoryUnitOfWork:
        return self.db.uow(readonly)

    async def follower(self, vault_id: str = "VA", tenant_id: str = "tnt_a",
                       **raw: Any) -> str:
        body = {"label": "f", "scale": "0.5",
                "webhook": {"url": f"https://hooks.example/{len(self.secrets_of)}"}, **raw}
        row, secret = await register_follower(self.uow(), self.secrets, tenant_id=tenant_id,
                                              vault_id=vault_id, raw=body, actor="test",
                                              clock=self.clock)
        self.secrets_of[row.follower_id] = secret
        return row.follower_id

    async def submit(self, tenant_id: str = "tnt_a", **raw: Any) -> Submitted:
        body = {"vault_id": "VA", "symbol": "AAPL", "side": "buy", "qty": "10",
                "ref_price": "100", **raw}
        return await submit_manager_order(self.uow(), tenant_id=tenant_id,
                                          order=parse_order_input(body), source="api",
                                          actor="manager", clock=self.clock)

    async def child(self, fo_id: str) -> ChildOrderRecord:
        async with self.uow() as u:
            row = await u.child_orders.get_unscoped(fo_id)
        assert row is not None
        return row

    async def drain(self, max_rounds: int = 20) -> int:
        """Run the dispatcher until nothing is due now; the rows handled."""
        total = 0
        for _ in range(max_rounds):
            n = await self.dispatcher.run_once()
            if not n:
                return total
            total += n
        raise AssertionError("the dispatcher never ran dry")


@pytest.fixture(autouse=True)
def no_process_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each world is its own database: the process-wide caches must not carry rows over."""
    monkeypatch.setattr(vault_cache, "_cache", vault_cache.VaultCache())
    monkeypatch.setattr(entitlements_cache, "_cache", entitlements_cache.EntitlementCache())


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """Tenants A (institutional) and B (core); vaults VA (A) and VB (B); no followers."""
    clock = FakeClock(START)
    db = MemoryDatabase(clock)
    secrets, sender = FakeSecretStore(), FakeWebhookSender()
    dispatcher = Dispatcher(
        uow_factory=db.uow, sender=sender, secrets=secrets, clock=clock,
        rng=random.Random(7),
        config=DispatchConfig(retry_schedule=(1.0, 5.0), jitter_fraction=0.0, batch=16,
                              concurrency=4, per_endpoint=4))
    for t, plan in (("tnt_a", "institutional"), ("tnt_b", "core")):
        await create_tenant(db.uow(), tenant_id=t, name=t)
        await grant_plan(db.uow(), tenant_id=t, plan_id=plan, actor="test", clock=clock)
    await create_vault(db.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
    await create_vault(db.uow(), tenant_id="tnt_b", vault_id="VB", label="B")
    yield World(db, clock, secrets, sender, dispatcher)
