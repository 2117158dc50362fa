"""With envelope encryption on, neither the database nor the secret files hold a webhook
secret or a broker key in the clear: the SQLite database, dumped whole after registering a
webhook follower and a bridged follower, holds references only."""

from __future__ import annotations

import base64
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet

from tests.api.conftest import Api
from tests.fakes.vetter import FakeTargetVetter
from tests.http_helpers import UNLIMITED, add_idempotency_key
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app

BROKER_KEY = "PKTEST-raw-broker-secret-4f1c9e"


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    c = build(Settings(data_dir=tmp_path, api_port=8000, secrets_envelope=True,
                       master_key=Fernet.generate_key().decode(), **UNLIMITED))
    # No DNS here: registration-time vetting has its own tests (test_url_vetting.py).
    c.vetter = FakeTargetVetter()
    await c.migrate()
    await create_tenant(c.uow(), tenant_id="tnt_a", name="tnt_a")
    await grant_plan(c.uow(), tenant_id="tnt_a", plan_id="institutional", actor="test")
    await create_vault(c.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
    app = create_app(c, run_dispatcher=False)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://test",
                                 event_hooks={"request": [add_idempotency_key]}) as client:
        yield Api(c, client)
    await c.close()


def _forms(secret: str) -> list[str]:
    """The secret as text and in the encodings a careless write might use."""
    raw = secret.encode()
    return [secret, base64.b64encode(raw).decode(), base64.urlsafe_b64encode(raw).decode(),
            raw.hex()]


async def test_a_database_dump_holds_no_webhook_secret_or_broker_key(
        api: Api, tmp_path: Path) -> None:
    hook = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(),
                                 json={"webhook": {"url": "https://hooks.example.com/a"}})
    assert hook.status_code == 201, hook.text
    whsec = hook.json()["webhook_secret"]
    bridged = await api.client.post("/v1/vaults/VA/followers", headers=api.auth(), json={
        "bridged": {"broker": "alpaca", "credentials": {"key_id": "AKTEST",
                                                        "secret_key": BROKER_KEY}}})
    assert bridged.status_code == 201, bridged.text

    with sqlite3.connect(tmp_path / "vanta.db") as db:
        dump = "\n".join(db.iterdump())
    assert "local:webhook/" in dump and "local:broker/" in dump  # the references are there
    secrets = [whsec, whsec.removeprefix("whsec_"), BROKER_KEY]
    for secret in secrets:
        for form in _forms(secret):
            assert form not in dump
    stored = [p.read_bytes() for p in (tmp_path / "secrets").iterdir()]
    assert len(stored) >= 2 and all(b.startswith(b"vanta-envelope-v1\n") for b in stored)
    assert not (tmp_path / "secrets" / "master.key").exists()
    files = b"".join(stored)
    for secret in secrets:
        for form in _forms(secret):
            assert form.encode() not in files
