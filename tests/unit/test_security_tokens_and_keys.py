"""JWT time claims must be JSON numbers; the production profile needs an external master key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization

from tests.unit.dev_issuers import AUD, ISS
from vanta.adapters.identity.dev_issuer import DevIssuer
from vanta.adapters.identity.verifier import InvalidToken, TokenVerifier
from vanta.adapters.secrets.local import LocalSecretStore, MasterKeyRequired
from vanta.bootstrap import MasterKeyMissing, build
from vanta.config import Settings

PG_URL = "postgresql+asyncpg://vanta@127.0.0.1:1/never-connected"


def _token(issuer: DevIssuer, **overrides: Any) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "nbf": now,
                              "exp": now + 600, "tenant_id": "tnt_a", "scope": "orders:read"}
    claims.update(overrides)
    key = serialization.load_pem_private_key(issuer.key_path.read_bytes(), password=None)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": issuer.kid})


@pytest.fixture()
def verifier(issuer: DevIssuer) -> TokenVerifier:
    return TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, leeway=30)


@pytest.mark.parametrize(("claim", "value"), [
    ("exp", str(int(time.time()) + 600)),   # PyJWT would int() this and accept it
    ("iat", str(int(time.time()))),
    ("iat", False),
    ("nbf", str(int(time.time()))),
    ("nbf", True),
    ("exp", [int(time.time()) + 600]),
    ("exp", float("inf")),
    ("nbf", float("nan")),
], ids=lambda v: type(v).__name__ if not isinstance(v, str) or v.isdigit() else v)
def test_time_claims_of_the_wrong_type_are_refused(issuer: DevIssuer, verifier: TokenVerifier,
                                                   claim: str, value: Any) -> None:
    with pytest.raises(InvalidToken) as e:
        verifier.verify(_token(issuer, **{claim: value}))
    assert e.value.reason in ("invalid_claim", "malformed")
    assert e.value.reason == "invalid_claim" or not isinstance(value, str | bool)


def test_numeric_time_claims_are_accepted(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    now = time.time()
    assert verifier.verify(_token(issuer, exp=now + 600.5, iat=now, nbf=int(now))).subject \
        == "user-1"


# --- the master key ---------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VANTA_MASTER_KEY", raising=False)
    monkeypatch.delenv("VANTA_PROFILE", raising=False)
    monkeypatch.delenv("VANTA_DATABASE_URL", raising=False)


@pytest.mark.parametrize("settings", [
    {"database_url": PG_URL},
    {"profile": "production"},
    {"profile": "production", "database_url": PG_URL},
])
def test_production_refuses_to_build_without_an_external_key(tmp_path: Path,
                                                            settings: dict[str, Any]) -> None:
    data = tmp_path / "data"
    with pytest.raises(MasterKeyMissing, match="VANTA_MASTER_KEY"):
        build(Settings(data_dir=data, **settings))
    assert not data.exists()  # refused before anything was written


async def test_production_with_a_key_keeps_it_out_of_the_data_folder(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    c = build(Settings(data_dir=tmp_path, profile="production", master_key=key.decode()))
    try:
        ref = c.secrets.put("whsec", b"s3cret")
        assert c.secrets.get(ref) == b"s3cret"
        assert not list(tmp_path.rglob("master.key"))
        # the folder alone does not decrypt it; the external key does
        assert LocalSecretStore(tmp_path / "secrets", master_key=key).get(ref) == b"s3cret"
    finally:
        await c.close()


async def test_the_embedded_profile_keeps_its_key_file(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    assert not s.is_production
    c = build(s)
    try:
        c.secrets.put("whsec", b"s3cret")
        assert (tmp_path / "secrets" / "master.key").is_file()
    finally:
        await c.close()


def test_the_store_refuses_the_key_file_when_told(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path, allow_key_file=False)
    with pytest.raises(MasterKeyRequired):
        store.put("x", b"y")
    assert not (tmp_path / "master.key").exists()


def test_serve_says_why_it_will_not_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VANTA_")}
    env.update(VANTA_DATA_DIR=str(tmp_path / "data"), VANTA_DATABASE_URL=PG_URL)
    done = subprocess.run([sys.executable, "-m", "vanta.entrypoints.cli.main", "serve",
                           "--port", "0"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "VANTA_MASTER_KEY" in done.stderr and "Traceback" not in done.stderr


def test_settings_read_the_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("VANTA_MASTER_KEY", key)
    s = Settings(database_url=PG_URL)
    assert s.is_production and s.master_key is not None
    assert s.master_key.get_secret_value() == key and key not in repr(s)
