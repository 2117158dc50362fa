"""VANTA_SECRETS_BACKEND=vault is refused at startup without an address and a way to log in,
and the composition root passes the settings to the Vault store as given."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from vanta.adapters.secrets.vault import VaultSecretStore
from vanta.bootstrap.secrets import vault_store
from vanta.config import Settings


@pytest.mark.parametrize("env", [
    {},  # no address
    {"vault_addr": "http://vault:8200"},  # no login
    {"vault_addr": "http://vault:8200", "vault_role_id": "r"},  # AppRole half given
])
def test_vault_without_an_address_or_a_login_is_refused(env: dict[str, str],
                                                       tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="VANTA_VAULT"):
        Settings(data_dir=tmp_path, secrets_backend="vault", **env)


def test_settings_from_the_environment_reach_the_store(monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path) -> None:
    for key, value in {"SECRETS_BACKEND": "vault", "VAULT_ADDR": "http://vault:8200",
                       "VAULT_ROLE_ID": "rid", "VAULT_SECRET_ID": "sid-secret",
                       "VAULT_MOUNT": "kv", "VAULT_PREFIX": "/team/vanta/"}.items():
        monkeypatch.setenv(f"VANTA_{key}", value)
    s = Settings(data_dir=tmp_path)
    assert "sid-secret" not in repr(s)
    store = vault_store(s)
    assert isinstance(store, VaultSecretStore)
    config = store._config
    assert (config.addr, config.mount, config.role_id, config.secret_id, config.token) == (
        "http://vault:8200", "kv", "rid", "sid-secret", None)
    assert repr(store) == ("VaultSecretStore(addr='http://vault:8200', mount='kv', "
                           "prefix='team/vanta/')")


def test_the_local_backend_stays_the_default(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).secrets_backend == "local"
