"""A fake signer: HMAC-SHA256 with the "public key" as its key. Not asymmetric (anyone with
the public key could sign), which is all the application tests need: a signature binds the
exact bytes to one key, and another key or another byte fails."""

from __future__ import annotations

import hashlib
import hmac
import os

from vanta.application.ports.signing import key_id_of


class FakeSigner:
    algorithm = "fake-hmac"

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else os.urandom(32)

    @property
    def key_id(self) -> str:
        return key_id_of(self._key)

    def public_key(self) -> bytes:
        return self._key

    def sign(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()


class FakeVerifier:
    def verify(self, public_key: bytes, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(hmac.new(public_key, data, hashlib.sha256).digest(),
                                   signature)
