"""Envelope encryption in the local secret store: a fresh data key per secret, wrapped by a
KeyWrapper; no master key involved in new writes; older master-key files still read."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from vanta.adapters.secrets.keywrap import LocalKeyWrapper
from vanta.adapters.secrets.local import LocalSecretStore, SecretUnreadable

VALUE = b"whsec_raw-webhook-key"


class CountingWrapper(LocalKeyWrapper):
    def __init__(self, key: bytes) -> None:
        super().__init__(key)
        self.wrapped: list[bytes] = []

    def wrap(self, data_key: bytes) -> bytes:
        self.wrapped.append(data_key)
        return super().wrap(data_key)


def _file(store: LocalSecretStore) -> bytes:
    [path] = [p for p in store.directory.iterdir() if p.suffix == ".secret"]
    return path.read_bytes()


def test_each_put_wraps_its_own_data_key_and_needs_no_master_key(tmp_path: Path) -> None:
    wrapper = CountingWrapper(Fernet.generate_key())
    store = LocalSecretStore(tmp_path, key_wrapper=wrapper, allow_key_file=False)
    a, b = store.put("a", VALUE), store.put("b", VALUE)
    assert (store.get(a), store.get(b)) == (VALUE, VALUE)
    assert len(wrapper.wrapped) == 2 and wrapper.wrapped[0] != wrapper.wrapped[1]
    assert not (tmp_path / "master.key").exists()


def test_the_file_holds_the_wrapped_key_not_the_data_key_or_the_value(tmp_path: Path) -> None:
    wrapper = CountingWrapper(Fernet.generate_key())
    store = LocalSecretStore(tmp_path, key_wrapper=wrapper)
    store.put("a", VALUE)
    raw = _file(store)
    assert raw.startswith(b"vanta-envelope-v1\n")
    assert VALUE not in raw and wrapper.wrapped[0] not in raw


def test_another_wrapper_key_cannot_read_it(tmp_path: Path) -> None:
    ref = LocalSecretStore(tmp_path, key_wrapper=LocalKeyWrapper(Fernet.generate_key())
                           ).put("a", VALUE)
    other = LocalSecretStore(tmp_path, key_wrapper=LocalKeyWrapper(Fernet.generate_key()))
    with pytest.raises(SecretUnreadable):
        other.get(ref)
    with pytest.raises(SecretUnreadable):  # nor a store without a wrapper
        LocalSecretStore(tmp_path, master_key=Fernet.generate_key()).get(ref)


def test_switching_envelopes_on_keeps_older_secrets_readable(tmp_path: Path) -> None:
    master = Fernet.generate_key()
    old = LocalSecretStore(tmp_path, master_key=master).put("old", b"before")
    store = LocalSecretStore(tmp_path, master_key=master,
                             key_wrapper=LocalKeyWrapper(Fernet.generate_key()))
    new = store.put("new", b"after")
    assert (store.get(old), store.get(new)) == (b"before", b"after")


def test_the_wrapper_rotates_keys_first_wraps_all_unwrap() -> None:
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    wrapped = LocalKeyWrapper(old_key).wrap(b"dk")
    rotated = LocalKeyWrapper(new_key, old_key)
    assert rotated.unwrap(wrapped) == b"dk"
    assert LocalKeyWrapper(new_key).unwrap(rotated.wrap(b"dk")) == b"dk"
    with pytest.raises(ValueError):
        LocalKeyWrapper(new_key).unwrap(wrapped)
    assert new_key.decode() not in repr(rotated)
    with pytest.raises(ValueError):
        LocalKeyWrapper(b"not a key")


def test_the_envelope_setting_needs_an_external_master_key(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from vanta.config import Settings

    with pytest.raises(ValidationError, match="VANTA_MASTER_KEY"):
        Settings(data_dir=tmp_path, secrets_envelope=True)
    Settings(data_dir=tmp_path, secrets_envelope=True, master_key=Fernet.generate_key().decode())
