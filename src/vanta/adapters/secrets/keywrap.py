"""A local :class:`~vanta.application.ports.secrets.KeyWrapper`: data keys wrapped with Fernet
under key-encryption keys held by this process (e.g. from VANTA_MASTER_KEY), standing in for a
cloud KMS. Several keys may be given: the first wraps, every one unwraps, so a key can be
rotated without rewriting the secrets at once.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

__all__ = ["LocalKeyWrapper"]


class LocalKeyWrapper:
    def __init__(self, *keys: bytes) -> None:
        if not keys:
            raise ValueError("LocalKeyWrapper needs at least one key-encryption key")
        try:
            self._fernet = MultiFernet([Fernet(k.strip()) for k in keys])
            self._count = len(keys)
        except (ValueError, TypeError):
            raise ValueError("invalid Fernet key-encryption key") from None  # never echo it

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<{self._count} key(s)>)"

    def wrap(self, data_key: bytes) -> bytes:
        return self._fernet.encrypt(data_key)

    def unwrap(self, wrapped: bytes) -> bytes:
        try:
            return self._fernet.decrypt(wrapped)
        except InvalidToken:
            raise ValueError("data key cannot be unwrapped with these keys") from None
