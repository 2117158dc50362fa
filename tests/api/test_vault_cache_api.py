"""GET /v1/vaults is served from the vault cache, and every write to the vaults table (through
the API, the application layer, or `vanta vault-create` in another process) shows at once."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from sqlalchemy import select, text

from tests.api.conftest import Api
from tests.http_helpers import UNLIMITED_ENV
from vanta.adapters.db.tables import audit_events
from vanta.application import vault_cache
from vanta.application.seed import create_vault


def _count_uows(api: Api, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    opened: list[bool] = []
    real = api.container.uow

    def counting(readonly: bool = False) -> Any:
        opened.append(readonly)
        return real(readonly)

    monkeypatch.setattr(api.container, "uow", counting)
    return opened


async def _vaults(api: Api, tenant: str = "tnt_a", **kw: Any) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/vaults", headers=kw.pop("headers", None) or api.auth(tenant))
    assert r.status_code == 200, r.text
    return r.json()["data"]  # type: ignore[no-any-return]


async def test_a_cache_hit_opens_no_database_transaction(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    assert [v["vault_id"] for v in await _vaults(api)] == ["VA"]
    opened = _count_uows(api, monkeypatch)
    for _ in range(3):
        assert [v["vault_id"] for v in await _vaults(api)] == ["VA"]
    assert opened == []


async def test_tenants_never_see_each_others_cached_vaults(api: Api) -> None:
    assert [v["vault_id"] for v in await _vaults(api, "tnt_a")] == ["VA"]
    assert [v["vault_id"] for v in await _vaults(api, "tnt_b")] == ["VB"]
    assert [v["vault_id"] for v in await _vaults(api, "tnt_a")] == ["VA"]
    assert [v["vault_id"] for v in await _vaults(api, "tnt_c")] == []


async def test_a_maintenance_toggle_shows_at_once(api: Api) -> None:
    assert (await _vaults(api))[0]["maintenance"] is False
    r = await api.client.post("/v1/vaults/VA/overlay", headers=api.auth(),
                              json={"maintenance": {"enabled": True}})
    assert r.status_code == 201, r.text
    assert (await _vaults(api))[0]["maintenance"] is True


async def test_create_vault_in_process_shows_at_once(api: Api) -> None:
    await _vaults(api)
    store = api.client._transport.app.state.cache_store  # type: ignore[attr-defined]
    before = await store.get(vault_cache.GENERATION_KEY)
    await create_vault(api.container.uow(), tenant_id="tnt_a", vault_id="VA2", label="A2")
    assert await store.get(vault_cache.GENERATION_KEY) != before  # other replicas reload too
    assert [v["vault_id"] for v in await _vaults(api)] == ["VA", "VA2"]


async def test_vault_create_from_another_process_shows_at_once(api: Api) -> None:
    await _vaults(api)
    env = {**os.environ, "VANTA_DATA_DIR": str(api.container.settings.data_dir),
           **UNLIMITED_ENV}
    subprocess.run([sys.executable, "-m", "vanta.entrypoints.cli.main", "vault-create", "VX",
                    "--tenant", "tnt_a"], env=env, check=True, capture_output=True, timeout=120)
    assert [v["vault_id"] for v in await _vaults(api)] == ["VA", "VX"]


async def test_a_raw_write_to_the_vaults_table_through_a_unit_of_work_invalidates(
        api: Api) -> None:
    await _vaults(api)
    async with api.container.uow() as uow:
        assert uow.conn is not None
        await uow.conn.execute(text("UPDATE vaults SET label = 'renamed' WHERE vault_id = 'VA'"))
        await uow.commit()
    assert (await _vaults(api))[0]["label"] == "renamed"


async def test_a_rolled_back_write_does_not_bump_the_generation(api: Api) -> None:
    await _vaults(api)
    store = api.client._transport.app.state.cache_store  # type: ignore[attr-defined]
    before = await store.get(vault_cache.GENERATION_KEY)
    async with api.container.uow() as uow:
        assert uow.conn is not None
        await uow.conn.execute(text("UPDATE vaults SET label = 'x' WHERE vault_id = 'VA'"))
    async with api.container.uow() as uow:  # same pooled connection: the flag was dropped
        await uow.commit()
    assert await store.get(vault_cache.GENERATION_KEY) == before
    assert (await _vaults(api))[0]["label"] == "A"


async def test_restricted_tokens_see_only_their_vaults_from_the_cache(api: Api) -> None:
    await create_vault(api.container.uow(), tenant_id="tnt_a", vault_id="VA2", label="A2")
    assert [v["vault_id"] for v in await _vaults(api)] == ["VA", "VA2"]  # cache filled
    tok = api.container.issuer.issue("u", "tnt_a", ["vault:read"], vault_ids=["VA2"])
    only = await _vaults(api, headers={"Authorization": f"Bearer {tok}"})
    assert [v["vault_id"] for v in only] == ["VA2"]
    r = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                              json={"webhook": {"url": "https://f.example/h"}})
    assert r.status_code == 201, r.text
    fid = r.json()["follower_id"]
    ftok = api.container.issuer.issue("f", "tnt_a", ["vault:read"], roles=["follower"],
                                      follower_id=fid)
    mine = await _vaults(api, headers={"Authorization": f"Bearer {ftok}"})
    assert [v["vault_id"] for v in mine] == ["VA"]


async def test_every_cached_request_is_still_audited(api: Api) -> None:
    ids = []
    for i in range(5):
        r = await api.client.get("/v1/vaults", headers={**api.auth(), "X-Request-Id": f"c-{i}"})
        ids.append(r.headers["x-request-id"])
    await api.client._transport.app.state.audit_batcher.flush()  # type: ignore[attr-defined]
    async with api.container.engine.connect() as conn:
        rows = (await conn.execute(select(audit_events.c.entity_id).where(
            audit_events.c.entity == "request"))).scalars().all()
    assert ids == [f"c-{i}" for i in range(5)] and sorted(rows) == ids


async def test_auth_errors_are_unchanged(api: Api) -> None:
    r = await api.client.get("/v1/vaults")
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = await api.client.get("/v1/vaults", headers=api.auth(scopes=("orders:read",)))
    assert r.status_code == 403 and r.json()["code"] == "insufficient_scope"
    r = await api.client.get("/v1/vaults/VB", headers=api.auth())
    assert r.status_code == 404 and r.json()["code"] == "vault_not_found"
