"""What only the Vault secret store does, on a real OpenBao dev server (the shared contract is
in tests/contract/test_secrets_contract.py): where values land in the KV mount, pinned
versions, an expired AppRole token, refused credentials, and no secret in ``repr``."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.openbao import Bao, run_bao
from vanta.adapters.secrets.local import SecretNotFound
from vanta.adapters.secrets.vault import VaultConfig, VaultSecretStore, VaultUnavailable


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    with run_bao(tmp_path_factory.mktemp("bao")) as server:
        yield server


@pytest.fixture
def prefix() -> str:
    return f"it-{uuid.uuid4().hex[:12]}"


def _token_store(bao: Bao, prefix: str) -> VaultSecretStore:
    return VaultSecretStore(VaultConfig(bao.addr, prefix=prefix, token=bao.root_token))


def test_values_land_base64_under_the_prefix_and_the_ref_names_the_path(
        bao: Bao, prefix: str) -> None:
    store = _token_store(bao, prefix)
    ref = store.put("webhook/f1/v1", b"\x00\xffkey")
    assert ref == f"vault:{prefix}/webhook/f1/v1"
    raw = bao.root().secrets.kv.v2.read_secret_version(
        path=f"{prefix}/webhook/f1/v1", mount_point="secret", raise_on_deleted_version=True)
    assert raw["data"]["data"] == {"value_b64": base64.b64encode(b"\x00\xffkey").decode()}


def test_a_pinned_reference_reads_its_version_and_the_plain_one_the_latest(
        bao: Bao, prefix: str) -> None:
    store = _token_store(bao, prefix)
    ref = store.put("broker/f1/alpaca", b"first")
    store.put("broker/f1/alpaca", b"second")
    assert store.get(f"{ref}#1") == b"first"
    assert store.get(f"{ref}#2") == b"second"
    assert store.get(ref) == b"second"
    with pytest.raises(SecretNotFound):
        store.get(f"{ref}#3")
    for bad in (f"{ref}#0", f"{ref}#x", f"{ref}#"):
        with pytest.raises(ValueError):
            store.get(bad)


@pytest.mark.parametrize("name", ["/lead", "trail/", "a//b", "a/../b", "./a", "a#1"])
def test_names_vault_would_normalise_onto_another_path_are_refused(
        bao: Bao, prefix: str, name: str) -> None:
    with pytest.raises(ValueError):
        _token_store(bao, prefix).put(name, b"v")


def test_an_approle_store_logs_in_again_when_its_token_is_revoked(
        bao: Bao, prefix: str) -> None:
    role_id, secret_id = bao.approle("vanta-relogin")
    store = VaultSecretStore(VaultConfig(bao.addr, prefix=prefix, role_id=role_id,
                                         secret_id=secret_id))
    ref = store.put("webhook/f2/v1", b"before")
    token = store._client.token  # type: ignore[union-attr]
    bao.root().auth.token.revoke(token)  # as when its TTL runs out
    assert store.get(ref) == b"before"
    assert store._client.token != token  # type: ignore[union-attr]


def test_a_refused_token_is_reported_without_the_token(bao: Bao, prefix: str) -> None:
    store = VaultSecretStore(VaultConfig(bao.addr, prefix=prefix, token="not-a-real-token"))
    with pytest.raises(VaultUnavailable) as err:
        store.put("x", b"v")
    assert "not-a-real-token" not in str(err.value)


def test_bad_approle_credentials_are_reported_without_them(bao: Bao, prefix: str) -> None:
    bao.approle("vanta-bad")
    store = VaultSecretStore(VaultConfig(bao.addr, prefix=prefix, role_id="nope",
                                         secret_id="wrong-secret-id"))
    with pytest.raises(VaultUnavailable) as err:
        store.get(f"vault:{prefix}/x")
    assert "wrong-secret-id" not in str(err.value)


def test_repr_and_config_repr_hide_credentials(bao: Bao) -> None:
    config = VaultConfig(bao.addr, token="tok-123", role_id="rid-456", secret_id="sid-789")
    for text in (repr(config), repr(VaultSecretStore(config))):
        assert not any(s in text for s in ("tok-123", "rid-456", "sid-789"))


def test_a_config_needs_a_way_to_log_in() -> None:
    with pytest.raises(ValueError):
        VaultConfig("http://127.0.0.1:1")
    with pytest.raises(ValueError):
        VaultConfig("http://127.0.0.1:1", role_id="r")


async def test_the_composition_root_selects_vault_and_needs_no_master_key(
        bao: Bao, prefix: str, tmp_path: Path) -> None:
    from vanta.bootstrap import build
    from vanta.config import Settings

    c = build(Settings(data_dir=tmp_path, profile="production", secrets_backend="vault",
                       vault_addr=bao.addr, vault_token=bao.root_token, vault_prefix=prefix))
    try:
        assert isinstance(c.secrets, VaultSecretStore)
        ref = c.secrets.put("webhook/f3/v1", b"s3cret")
        assert ref == f"vault:{prefix}/webhook/f3/v1"
        assert _token_store(bao, "other").get(ref) == b"s3cret"  # the ref is the whole path
        assert not (tmp_path / "secrets").exists()
    finally:
        await c.close()


def test_an_unreachable_vault_is_reported_as_unavailable(prefix: str) -> None:
    from tests.integration.test_s3_objectstore import free_ports

    store = VaultSecretStore(VaultConfig(f"http://127.0.0.1:{free_ports(1)[0]}",
                                         prefix=prefix, token="t", timeout_seconds=2))
    with pytest.raises(VaultUnavailable, match="unreachable"):
        store.get(f"vault:{prefix}/x")
