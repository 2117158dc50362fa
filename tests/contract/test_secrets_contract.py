"""The secret store contract (:mod:`vanta.application.ports.secrets`), run on every
implementation.

* ``SecretStore`` (put / get / delete): the in-memory fake (``tests/fakes/secrets.py``), the
  local encrypted store (under a master key, and with envelope encryption), and the Vault
  store (KV v2) on a real OpenBao dev server started once for this module
  (``tests/integration/openbao.py``; skipped with the reason without the ``bao`` binary, a
  failure with CI=true), logged in with a token and with AppRole.
* ``SecretReader`` (get): all of those, and the dispatcher's read-through cache
  (``CachedSecrets``) over each of them. The cache may keep serving a value it has already
  read until its TTL runs out (the application rotates keys under new names), so the reader
  cases only read what was stored before, or never read before.

The local store's own behaviour (encryption at rest, file modes, the master key) stays in
``tests/unit/test_local_secret_store.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from tests.fakes.secrets import FakeSecretStore
from tests.integration.openbao import Bao, run_bao
from vanta.adapters.secrets.cached import CachedSecrets
from vanta.adapters.secrets.keywrap import LocalKeyWrapper
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.application.ports.secrets import SecretReader, SecretStore

VALUE = b"super-secret-webhook-key-0123456789abcdef"
NAME = "webhook/01HZXFOLLOWER/v1"


def _fake(_: pytest.FixtureRequest, __: Path) -> SecretStore:
    return FakeSecretStore()


def _local(_: pytest.FixtureRequest, tmp: Path) -> SecretStore:
    return LocalSecretStore(tmp / "secrets", master_key=Fernet.generate_key())


def _envelope(_: pytest.FixtureRequest, tmp: Path) -> SecretStore:
    return LocalSecretStore(tmp / "secrets",
                            key_wrapper=LocalKeyWrapper(Fernet.generate_key()))


def _vault(request: pytest.FixtureRequest, approle: bool) -> SecretStore:
    from vanta.adapters.secrets.vault import VaultConfig, VaultSecretStore

    bao: Bao = request.getfixturevalue("bao")
    prefix = f"test-{uuid.uuid4().hex[:12]}/"  # each test its own corner of the mount
    if approle:
        role_id, secret_id = bao.approle("vanta")
        return VaultSecretStore(VaultConfig(bao.addr, prefix=prefix, role_id=role_id,
                                            secret_id=secret_id))
    return VaultSecretStore(VaultConfig(bao.addr, prefix=prefix, token=bao.root_token))


STORES: dict[str, Callable[[pytest.FixtureRequest, Path], SecretStore]] = {
    "fake": _fake, "local": _local, "local-envelope": _envelope,
    "vault-token": lambda request, _: _vault(request, approle=False),
    "vault-approle": lambda request, _: _vault(request, approle=True),
}


@pytest.fixture(scope="module")
def bao(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bao]:
    with run_bao(tmp_path_factory.mktemp("bao")) as server:
        yield server


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> SecretStore:
    return STORES[request.param](request, tmp_path)


@dataclass
class Reading:
    writer: SecretStore  # where the test puts values
    reader: SecretReader  # the implementation under test


@pytest.fixture(params=["fake", "local", "vault-token", "vault-approle", "cached-fake",
                        "cached-local", "cached-vault-approle"])
def reading(request: pytest.FixtureRequest, tmp_path: Path) -> Reading:
    kind = str(request.param)
    writer = STORES[kind.removeprefix("cached-")](request, tmp_path)
    reader = CachedSecrets(writer, ttl_seconds=60) if kind.startswith("cached-") else writer
    return Reading(writer, reader)


# -- SecretStore ----------------------------------------------------------------------------

def test_put_returns_a_reference_that_reads_the_value_back(store: SecretStore) -> None:
    ref = store.put(NAME, VALUE)
    assert isinstance(ref, str) and ref
    assert VALUE.decode() not in ref  # the reference goes to the database: never the value
    assert store.get(ref) == VALUE
    assert VALUE.decode() not in repr(store)


def test_empty_and_binary_values(store: SecretStore) -> None:
    assert store.get(store.put("empty", b"")) == b""
    blob = bytes(range(256))
    assert store.get(store.put("bin", blob)) == blob


def test_names_are_separate_and_a_put_replaces_its_name(store: SecretStore) -> None:
    a, b = store.put("a", b"1"), store.put("b", b"2")
    assert a != b
    again = store.put("a", b"replaced")
    assert again == a
    assert (store.get(a), store.get(b)) == (b"replaced", b"2")


def test_delete_removes_and_missing_ok_tolerates_absence(store: SecretStore) -> None:
    ref = store.put(NAME, VALUE)
    store.delete(ref)
    with pytest.raises(KeyError):
        store.get(ref)
    with pytest.raises(KeyError):
        store.delete(ref)
    store.delete(ref, missing_ok=True)
    assert store.get(store.put(NAME, b"back")) == b"back"


@pytest.mark.parametrize("name", ["", "a\x00b"])
def test_bad_names_are_refused(store: SecretStore, name: str) -> None:
    with pytest.raises(ValueError):
        store.put(name, VALUE)


def test_values_must_be_bytes(store: SecretStore) -> None:
    with pytest.raises(TypeError):
        store.put(NAME, "text")  # type: ignore[arg-type]


@pytest.mark.parametrize("ref", ["no-scheme", "unknown-scheme:name"])
def test_malformed_references_are_refused(store: SecretStore, ref: str) -> None:
    with pytest.raises(ValueError):
        store.get(ref)
    with pytest.raises(ValueError):
        store.delete(ref, missing_ok=True)


# -- SecretReader ---------------------------------------------------------------------------

def test_a_reader_returns_what_was_stored(reading: Reading) -> None:
    ref = reading.writer.put(NAME, VALUE)
    other = reading.writer.put("broker/f1/alpaca", b'{"key": "k"}')
    assert [reading.reader.get(ref) for _ in range(3)] == [VALUE] * 3
    assert reading.reader.get(other) == b'{"key": "k"}'


def test_a_missing_secret_raises_and_is_not_remembered(reading: Reading) -> None:
    ref = reading.writer.put(NAME, VALUE)
    reading.writer.delete(ref)
    with pytest.raises(KeyError):
        reading.reader.get(ref)
    reading.writer.put(NAME, b"now here")
    assert reading.reader.get(ref) == b"now here"


def test_the_fake_records_reads_and_fails_on_demand() -> None:
    fake = FakeSecretStore()
    ref = fake.put(NAME, VALUE)
    fake.fail_next_get()
    with pytest.raises(RuntimeError):
        fake.get(ref)
    assert fake.get(ref) == VALUE
    assert fake.reads == [ref, ref] and fake.names() == [NAME] and fake.exists(ref)
