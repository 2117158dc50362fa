"""Secret store pieces chosen by the settings: the Vault store (VANTA_SECRETS_BACKEND=vault)
and the local store's key wrapper (VANTA_SECRETS_ENVELOPE=true)."""

from __future__ import annotations

from vanta.adapters.secrets.keywrap import LocalKeyWrapper
from vanta.adapters.secrets.vault import VaultConfig, VaultSecretStore
from vanta.config import Settings

__all__ = ["key_wrapper", "vault_store"]


def vault_store(s: Settings) -> VaultSecretStore:
    """Settings validation has already checked the address and one way to log in."""
    assert s.vault_addr is not None
    token = s.vault_token.get_secret_value() if s.vault_token else None
    secret_id = s.vault_secret_id.get_secret_value() if s.vault_secret_id else None
    return VaultSecretStore(VaultConfig(
        addr=s.vault_addr, mount=s.vault_mount, prefix=s.vault_prefix, token=token,
        role_id=None if token else s.vault_role_id, secret_id=None if token else secret_id,
        verify=s.vault_ca_cert or True))


def key_wrapper(s: Settings, master_key: bytes | None) -> LocalKeyWrapper | None:
    """The wrapper for envelope encryption, or None when it is off. A cloud KMS would be
    chosen here too; the local one wraps with the external master key."""
    if not s.secrets_envelope:
        return None
    assert master_key is not None  # settings validation requires it
    return LocalKeyWrapper(master_key)
