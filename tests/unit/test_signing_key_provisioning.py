"""The platform signing key is made once per data folder: the first use provisions it,
later uses (and other processes) read the same reference; an explicit reference wins."""

from __future__ import annotations

from pathlib import Path

from vanta.adapters.secrets.local import LocalSecretStore
from vanta.adapters.signing.ed25519 import Ed25519Signer
from vanta.bootstrap.signing import LazySigner


def test_the_first_use_provisions_and_later_ones_reuse(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets", master_key=None, allow_key_file=True)
    ref_file = tmp_path / "keys" / "signing-key.ref"
    first = LazySigner(store, None, ref_file)
    assert not ref_file.exists(), "nothing is made before a signature is needed"
    pk = first.public_key()
    assert ref_file.is_file() and len(pk) == 32
    assert LazySigner(store, None, ref_file).public_key() == pk
    assert b"local:" in ref_file.read_bytes(), "only the reference is written, not the key"


def test_a_racing_provisioner_adopts_the_winners_key(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets", master_key=None, allow_key_file=True)
    ref_file = tmp_path / "keys" / "signing-key.ref"
    winner = Ed25519Signer.provision(store, "winner")
    ref_file.parent.mkdir(parents=True)
    # another process wrote its reference after this one looked and before it wrote its own
    ref_file.write_text(winner + "\n")
    loser = LazySigner(store, None, ref_file)
    before = _secret_files(tmp_path)
    assert loser._provision() == winner
    assert ref_file.read_text().strip() == winner
    assert sorted(p.name for p in ref_file.parent.iterdir()) == ["signing-key.ref"]
    assert _secret_files(tmp_path) == before, "the loser's own key was deleted"


def _secret_files(root: Path) -> set[str]:
    return {str(p) for p in (root / "secrets").rglob("*") if p.is_file()}


def test_an_explicit_reference_wins(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets", master_key=None, allow_key_file=True)
    ref = Ed25519Signer.provision(store, "mine")
    signer = LazySigner(store, ref, tmp_path / "keys" / "signing-key.ref")
    assert signer.public_key() == Ed25519Signer(store, ref).public_key()
    assert not (tmp_path / "keys").exists()
