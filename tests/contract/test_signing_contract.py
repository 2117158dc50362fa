"""The signer contract (:mod:`vanta.application.ports.signing`), run on the fake
(``tests/fakes/signing.py``) and the Ed25519 adapter with its key in a real local secret
store: a signature verifies with the signer's public key over exactly the signed bytes, and
fails for any other byte, signature or key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.signing import FakeSigner, FakeVerifier
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.adapters.signing.ed25519 import Ed25519Signer, Ed25519Verifier
from vanta.application.ports.signing import SignatureVerifier, Signer, key_id_of


@dataclass
class Impl:
    signer: Signer
    other: Signer
    verifier: SignatureVerifier


@pytest.fixture(params=["fake", "ed25519"])
def impl(request: pytest.FixtureRequest, tmp_path: Path) -> Impl:
    if request.param == "fake":
        return Impl(FakeSigner(), FakeSigner(), FakeVerifier())
    store = LocalSecretStore(tmp_path / "secrets", master_key=None, allow_key_file=True)
    one = Ed25519Signer(store, Ed25519Signer.provision(store, "signing-a"))
    two = Ed25519Signer(store, Ed25519Signer.provision(store, "signing-b"))
    return Impl(one, two, Ed25519Verifier())


def test_a_signature_verifies_over_exactly_the_signed_bytes(impl: Impl) -> None:
    data = b'{"seq":7,"hash":"ab"}'
    sig = impl.signer.sign(data)
    pk = impl.signer.public_key()
    assert impl.verifier.verify(pk, data, sig)
    assert not impl.verifier.verify(pk, data + b" ", sig)
    assert not impl.verifier.verify(pk, b'{"seq":8,"hash":"ab"}', sig)
    flipped = bytes([sig[0] ^ 1]) + sig[1:]
    assert not impl.verifier.verify(pk, data, flipped)


def test_another_key_does_not_verify(impl: Impl) -> None:
    sig = impl.signer.sign(b"x")
    assert not impl.verifier.verify(impl.other.public_key(), b"x", sig)
    assert impl.signer.key_id != impl.other.key_id


def test_malformed_keys_and_signatures_are_false_not_errors(impl: Impl) -> None:
    assert not impl.verifier.verify(b"short", b"x", impl.signer.sign(b"x"))
    assert not impl.verifier.verify(impl.signer.public_key(), b"x", b"")


def test_the_key_id_is_a_digest_of_the_public_key(impl: Impl) -> None:
    assert impl.signer.key_id == key_id_of(impl.signer.public_key())
    assert impl.signer.key_id == impl.signer.key_id  # stable


def test_the_ed25519_key_is_read_back_from_the_secret_store(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets", master_key=None, allow_key_file=True)
    ref = Ed25519Signer.provision(store, "signing")
    first, again = Ed25519Signer(store, ref), Ed25519Signer(store, ref)
    assert first.public_key() == again.public_key() and len(first.public_key()) == 32
    assert Ed25519Verifier().verify(again.public_key(), b"m", first.sign(b"m"))
    assert first.algorithm == "Ed25519" and "signing" in repr(first)
    # the secret file holds no clear key bytes
    raw = store.get(ref)
    assert all(raw not in p.read_bytes() for p in (tmp_path / "secrets").rglob("*")
               if p.is_file())
