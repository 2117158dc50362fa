"""Secret storage: webhook signing keys and broker credentials, by reference.

``put`` returns the reference the database stores; values never reach a row or a log.
"""

from __future__ import annotations

from typing import Protocol


class SecretReader(Protocol):
    def get(self, ref: str) -> bytes: ...


class SecretStore(SecretReader, Protocol):
    def put(self, name: str, value: bytes) -> str:
        """Store ``value`` under ``name``; returns its reference."""
        ...

    def delete(self, ref: str, *, missing_ok: bool = False) -> None: ...


class KeyWrapper(Protocol):
    """A key-encryption service shaped like a KMS: it wraps the data keys secrets are
    encrypted with, and keeps its own key to itself (envelope encryption)."""

    def wrap(self, data_key: bytes) -> bytes:
        """Return ``data_key`` encrypted under the wrapper's key (opaque bytes)."""
        ...

    def unwrap(self, wrapped: bytes) -> bytes:
        """Return the data key ``wrap`` was given; raise ValueError if it cannot."""
        ...
