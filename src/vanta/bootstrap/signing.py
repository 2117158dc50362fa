"""The platform's signing key (audit anchors, replay bundles) and the verifier.

The private key is kept in the secret store; only its reference is kept elsewhere:
``VANTA_SIGNING_KEY_REF`` when set, else the file ``<data_dir>/keys/signing-key.ref``. With
neither, the first use makes a new key, stores it and writes that file.
"""

from __future__ import annotations

import os
from pathlib import Path

from vanta.adapters.signing.ed25519 import Ed25519Signer, Ed25519Verifier
from vanta.application.ports.secrets import SecretStore
from vanta.application.ports.signing import SignatureVerifier
from vanta.config import Settings

__all__ = ["LazySigner", "build_signer", "build_verifier"]

KEY_NAME = "platform-signing-ed25519"


class LazySigner:
    """Resolves (and on first use provisions) the key only when something is signed."""

    def __init__(self, secrets: SecretStore, ref: str | None, ref_file: Path) -> None:
        self._secrets, self._ref, self._ref_file = secrets, ref, ref_file
        self._signer: Ed25519Signer | None = None

    def _resolve(self) -> Ed25519Signer:
        if self._signer is None:
            ref = self._ref
            if ref is None and self._ref_file.is_file():
                ref = self._ref_file.read_text().strip()
            if ref is None:
                ref = self._provision()
            self._signer = Ed25519Signer(self._secrets, ref)
        return self._signer

    def _provision(self) -> str:
        """A new key, unless another process made one first: the reference file is created
        exclusively (a link cannot replace an existing name), so all processes of one data
        folder sign with the same key."""
        ref = Ed25519Signer.provision(self._secrets, f"{KEY_NAME}-{os.urandom(6).hex()}")
        self._ref_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._ref_file.with_name(f".{self._ref_file.name}.{os.getpid()}")
        tmp.write_text(ref + "\n")
        try:
            os.link(tmp, self._ref_file)
        except FileExistsError:
            self._secrets.delete(ref, missing_ok=True)
            ref = self._ref_file.read_text().strip()
        finally:
            tmp.unlink(missing_ok=True)
        return ref

    @property
    def algorithm(self) -> str:
        return "Ed25519"

    @property
    def key_id(self) -> str:
        return self._resolve().key_id

    def public_key(self) -> bytes:
        return self._resolve().public_key()

    def sign(self, data: bytes) -> bytes:
        return self._resolve().sign(data)


def build_signer(s: Settings, secrets: SecretStore) -> LazySigner:
    return LazySigner(secrets, s.signing_key_ref, s.data_dir / "keys" / "signing-key.ref")


def build_verifier() -> SignatureVerifier:
    return Ed25519Verifier()
