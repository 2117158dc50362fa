from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes.vetter import FakeTargetVetter
from tests.http_helpers import UNLIMITED, add_idempotency_key
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app


@dataclass
class Api:
    container: Container
    client: httpx.AsyncClient

    def token(self, tenant: str = "tnt_a", scopes: tuple[str, ...] = ALL_SCOPES) -> str:
        return self.container.issuer.issue("user-1", tenant, scopes)

    def auth(self, tenant: str = "tnt_a", scopes: tuple[str, ...] = ALL_SCOPES
             ) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, scopes)}"}


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    c = build(Settings(data_dir=tmp_path, api_port=8000, **UNLIMITED))
    # The suites name receivers such as follower.example: judge nothing, look nothing up.
    # tests/api/test_url_vetting.py drives the real vetter.
    c.vetter = FakeTargetVetter()
    await c.migrate()
    for t in ("tnt_a", "tnt_b"):
        await create_tenant(c.uow(), tenant_id=t, name=t)
    await grant_plan(c.uow(), tenant_id="tnt_a", plan_id="institutional", actor="test")
    await grant_plan(c.uow(), tenant_id="tnt_b", plan_id="core", actor="test")
    await create_vault(c.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
    await create_vault(c.uow(), tenant_id="tnt_b", vault_id="VB", label="B")
    app = create_app(c, run_dispatcher=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 event_hooks={"request": [add_idempotency_key]}) as client:
        yield Api(c, client)
    await c.close()
