"""Signing what the platform publishes for others to check (audit anchors, replay bundles).

A :class:`Signer` holds one private key (the adapter keeps it in the secret store, by
reference) and says which public key goes with it; a :class:`SignatureVerifier` checks a
signature with nothing but the public key, so a bundle verifies on a machine that has no
access to the platform. The adapter is Ed25519 (``vanta.adapters.signing``).
"""

from __future__ import annotations

import hashlib
from typing import Protocol

__all__ = ["SignatureVerifier", "Signer", "key_id_of"]


class Signer(Protocol):
    @property
    def algorithm(self) -> str:
        """The signature algorithm's name as published (``Ed25519``)."""
        ...

    @property
    def key_id(self) -> str: ...

    def public_key(self) -> bytes:
        """The raw public key (32 bytes for Ed25519)."""
        ...

    def sign(self, data: bytes) -> bytes: ...


class SignatureVerifier(Protocol):
    def verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        """True only when ``signature`` is ``public_key``'s over exactly ``data``; a
        malformed key or signature is False, never an exception."""
        ...


def key_id_of(public_key: bytes) -> str:
    """A key's id: a digest of the public key, so anyone holding the key can compute it."""
    return "k-" + hashlib.sha256(public_key).hexdigest()[:16]
