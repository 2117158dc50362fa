"""The Vault secret store from the settings (VANTA_SECRETS_BACKEND=vault)."""

from __future__ import annotations

from vanta.adapters.secrets.vault import VaultConfig, VaultSecretStore
from vanta.config import Settings

__all__ = ["vault_store"]


def vault_store(s: Settings) -> VaultSecretStore:
    """Settings validation has already checked the address and one way to log in."""
    assert s.vault_addr is not None
    token = s.vault_token.get_secret_value() if s.vault_token else None
    secret_id = s.vault_secret_id.get_secret_value() if s.vault_secret_id else None
    return VaultSecretStore(VaultConfig(
        addr=s.vault_addr, mount=s.vault_mount, prefix=s.vault_prefix, token=token,
        role_id=None if token else s.vault_role_id, secret_id=None if token else secret_id,
        verify=s.vault_ca_cert or True))
