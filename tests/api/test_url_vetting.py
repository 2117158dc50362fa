"""Webhook and broker URLs are vetted by the sender's SSRF policy when they are given
(literal addresses and a reserved ``.invalid`` name only: no public name is looked up)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.http_helpers import UNLIMITED, add_idempotency_key
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app

PROBLEM = "application/problem+json"


async def _client(tmp_path: Path, **settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    c = build(Settings(data_dir=tmp_path, **UNLIMITED, **settings))
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="t", name="t")
    await create_vault(c.uow(), tenant_id="t", vault_id="V", label="V")
    tok = c.issuer.issue("ops", "t", ALL_SCOPES)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(
            c, run_dispatcher=False)), base_url="http://t",
            headers={"Authorization": f"Bearer {tok}"},
            event_hooks={"request": [add_idempotency_key]}) as http:
        yield http
    await c.close()


@pytest.fixture
async def strict(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(tmp_path):
        yield http


@pytest.fixture
async def loopback_ok(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _client(tmp_path, webhook_allowlist=["127.0.0.1/32"]):
        yield http


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:9/h", "private_address"),
    ("http://10.1.2.3/h", "private_address"),
    ("http://[::1]:8080/h", "private_address"),
    ("http://169.254.10.1/h", "private_address"),  # link-local
    ("http://169.254.169.254/latest/meta-data", "metadata_address"),
    ("http://metadata.google.internal/x", "metadata_address"),
    ("https://hooks.vanta-test.invalid/h", "unresolvable"),
])
async def test_an_undeliverable_webhook_url_is_refused_at_registration(
        strict: httpx.AsyncClient, url: str, reason: str) -> None:
    r = await strict.post("/v1/vaults/V/followers", json={"webhook": {"url": url}})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["code"] == "webhook_url_not_deliverable"
    assert reason in r.json()["detail"]
    assert (await strict.get("/v1/vaults/V/followers")).json()["data"] == []


async def test_patch_to_an_undeliverable_url_is_refused(loopback_ok: httpx.AsyncClient
                                                        ) -> None:
    r = await loopback_ok.post("/v1/vaults/V/followers",
                               json={"webhook": {"url": "http://127.0.0.1:9/h"}})
    assert r.status_code == 201  # allowlisted by VANTA_WEBHOOK_ALLOWLIST
    fid = r.json()["follower_id"]
    r = await loopback_ok.patch(f"/v1/followers/{fid}",
                                json={"webhook": {"url": "http://192.168.1.7/h"}})
    assert r.status_code == 422 and r.json()["code"] == "webhook_url_not_deliverable"
    assert "private_address" in r.json()["detail"]
    follower = (await loopback_ok.get(f"/v1/followers/{fid}")).json()
    assert "192.168" not in str(follower)


async def test_allow_private_admits_private_but_never_metadata(tmp_path: Path) -> None:
    async for http in _client(tmp_path, webhook_allow_private=True):
        ok = await http.post("/v1/vaults/V/followers", json={"webhook": {"url": "http://10.9.8.7/"}})
        assert ok.status_code == 201
        r = await http.post("/v1/vaults/V/followers",
                            json={"webhook": {"url": "http://169.254.169.254/"}})
        assert r.status_code == 422 and "metadata_address" in r.json()["detail"]


@pytest.mark.parametrize(("broker", "creds"), [
    ("alpaca", {"key_id": "k", "secret_key": "s", "base_url": "http://10.0.0.8"}),
    ("tradier", {"access_token": "a", "account_id": "b",
                 "base_url": "http://169.254.169.254"}),
    ("paper", {"url": "http://venue.vanta-test.invalid:9400"}),
])
async def test_an_undeliverable_broker_url_is_refused_at_registration(
        strict: httpx.AsyncClient, broker: str, creds: dict[str, str]) -> None:
    r = await strict.post("/v1/vaults/V/followers",
                          json={"bridged": {"broker": broker, "credentials": creds}})
    assert r.status_code == 422 and r.json()["code"] == "broker_url_not_deliverable"
    assert r.json().get("field", "bridged.credentials").startswith("bridged.credentials")
