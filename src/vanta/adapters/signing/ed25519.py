"""Ed25519 signing through ``cryptography``; the private key lives in the secret store and
is read by reference when first needed."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from vanta.application.ports.secrets import SecretReader, SecretStore
from vanta.application.ports.signing import key_id_of

ALGORITHM = "Ed25519"


class Ed25519Signer:
    def __init__(self, secrets: SecretReader, ref: str) -> None:
        self._secrets = secrets
        self.ref = ref
        self._key: Ed25519PrivateKey | None = None

    @staticmethod
    def provision(secrets: SecretStore, name: str) -> str:
        """Make a new key, store its 32 private bytes under ``name``; its reference."""
        raw = Ed25519PrivateKey.generate().private_bytes_raw()
        return secrets.put(name, raw)

    def _private(self) -> Ed25519PrivateKey:
        if self._key is None:
            self._key = Ed25519PrivateKey.from_private_bytes(self._secrets.get(self.ref))
        return self._key

    @property
    def algorithm(self) -> str:
        return ALGORITHM

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key())

    def public_key(self) -> bytes:
        return self._private().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    def sign(self, data: bytes) -> bytes:
        return self._private().sign(data)

    def __repr__(self) -> str:  # the reference only, never the key
        return f"Ed25519Signer(ref={self.ref!r})"


class Ed25519Verifier:
    def verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(signature, data)
        except (InvalidSignature, ValueError, TypeError):
            return False
        return True
