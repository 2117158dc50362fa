"""LocalSecretStore: encrypted at rest, 0600 files, shared between instances."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from vanta.adapters.secrets.local import LocalSecretStore, SecretNotFound, SecretUnreadable

VALUE = b"super-secret-webhook-key-0123456789abcdef"
NAME = "webhook/01HZXFOLLOWER/v1"

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VANTA_MASTER_KEY", raising=False)


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()]


def test_round_trip(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "secrets")
    ref = store.put(NAME, VALUE)
    assert ref == f"local:{NAME}"
    assert store.get(ref) == VALUE
    store.put(NAME, b"replaced")
    assert store.get(ref) == b"replaced"


def test_empty_and_binary_values(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    assert store.get(store.put("empty", b"")) == b""
    blob = bytes(range(256))
    assert store.get(store.put("bin", blob)) == blob


def test_file_does_not_contain_plaintext(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    store.put(NAME, VALUE)
    files = _files(tmp_path)
    assert files
    for path in files:
        content = path.read_bytes()
        assert VALUE not in content
        assert NAME.encode() not in content
        assert NAME.encode() not in path.name.encode()


@posix_only
def test_file_modes_0600(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path / "s")
    store.put(NAME, VALUE)
    files = _files(tmp_path / "s")
    assert {p.name for p in files} >= {"master.key"}
    assert len(files) == 2
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_second_instance_reads_it(tmp_path: Path) -> None:
    ref = LocalSecretStore(tmp_path).put(NAME, VALUE)
    assert LocalSecretStore(tmp_path).get(ref) == VALUE


def test_master_key_argument_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Fernet.generate_key()
    ref = LocalSecretStore(tmp_path, master_key=key).put(NAME, VALUE)
    assert not (tmp_path / "master.key").exists()
    monkeypatch.setenv("VANTA_MASTER_KEY", key.decode())
    assert LocalSecretStore(tmp_path).get(ref) == VALUE
    monkeypatch.setenv("VANTA_MASTER_KEY", Fernet.generate_key().decode())
    with pytest.raises(SecretUnreadable):
        LocalSecretStore(tmp_path).get(ref)


def test_invalid_master_key_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError) as exc:
        LocalSecretStore(tmp_path, master_key=b"not-a-fernet-key")
    assert "not-a-fernet-key" not in str(exc.value)


def test_missing_ref_raises_secret_not_found(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    with pytest.raises(SecretNotFound):
        store.get("local:webhook/nobody/v1")
    with pytest.raises(KeyError):
        store.get("local:webhook/nobody/v1")


def test_other_scheme_raises_value_error(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    for ref in ("vault:webhook/x/v1", "webhook/x/v1", "LOCAL:x", "local:"):
        with pytest.raises(ValueError):
            store.get(ref)


def test_delete(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    ref = store.put(NAME, VALUE)
    store.delete(ref)
    with pytest.raises(SecretNotFound):
        store.get(ref)
    with pytest.raises(SecretNotFound):
        store.delete(ref)
    store.delete(ref, missing_ok=True)


def test_swapped_files_are_detected(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    a, b = store.put("a", b"value-a"), store.put("b", b"value-b")
    path_a, path_b = store._path("a"), store._path("b")
    os.replace(path_a, path_b)
    with pytest.raises(SecretUnreadable):
        store.get(b)
    with pytest.raises(SecretNotFound):
        store.get(a)


def test_repr_does_not_leak(tmp_path: Path) -> None:
    key = Fernet.generate_key()
    store = LocalSecretStore(tmp_path, master_key=key)
    store.put(NAME, VALUE)
    text = repr(store)
    assert key.decode() not in text
    assert VALUE.decode() not in text


def test_no_temp_files_left_behind(tmp_path: Path) -> None:
    store = LocalSecretStore(tmp_path)
    for i in range(5):
        store.put(f"webhook/{i}/v1", VALUE)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def _worker(directory: str, index: int) -> None:
    store = LocalSecretStore(Path(directory))
    for j in range(20):
        ref = store.put(f"webhook/{index}/{j}", f"{index}-{j}".encode())
        assert store.get(ref) == f"{index}-{j}".encode()


def test_concurrent_processes_distinct_names(tmp_path: Path) -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), i)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    store = LocalSecretStore(tmp_path)
    for i in range(4):
        for j in range(20):
            assert store.get(f"local:webhook/{i}/{j}") == f"{i}-{j}".encode()
