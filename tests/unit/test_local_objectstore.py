"""The local directory object store: create-only, atomic, checked on read."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest

from vanta.adapters.objectstore import (
    InvalidKey,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectStore,
    sha256_hex,
)
from vanta.adapters.objectstore.local import LocalObjectStore


@pytest.fixture
def store(tmp_path: Path) -> LocalObjectStore:
    return LocalObjectStore(tmp_path / "objects")


async def test_put_get_exists_and_ref(store: LocalObjectStore) -> None:
    assert isinstance(store, ObjectStore)
    ref = await store.put("audit/2026/01/05/events.jsonl", b"one\ntwo\n",
                          content_type="application/x-ndjson", metadata={"kind": "audit"})
    assert ref.created and ref.size == 8 and ref.sha256 == sha256_hex(b"one\ntwo\n")
    assert await store.get("audit/2026/01/05/events.jsonl") == b"one\ntwo\n"
    assert await store.exists("audit/2026/01/05/events.jsonl")
    assert not await store.exists("audit/2026/01/05/other.jsonl")
    with pytest.raises(ObjectNotFound):
        await store.get("audit/2026/01/05/other.jsonl")
    side = json.loads((store.root / ".meta/audit/2026/01/05/events.jsonl.json").read_text())
    assert side == {"sha256": ref.sha256, "size": 8, "content_type": "application/x-ndjson",
                    "metadata": {"kind": "audit"}}
    mode = stat.S_IMODE((store.root / "audit/2026/01/05/events.jsonl").stat().st_mode)
    assert mode == 0o600


async def test_same_bytes_again_is_a_no_op(store: LocalObjectStore) -> None:
    first = await store.put("k/a", b"x")
    again = await store.put("k/a", b"x", metadata={"other": "meta"})
    assert first.created and not again.created and again.sha256 == first.sha256


async def test_different_bytes_are_refused_and_the_object_is_kept(
        store: LocalObjectStore) -> None:
    await store.put("k/a", b"original")
    with pytest.raises(ObjectExists) as e:
        await store.put("k/a", b"changed")
    assert e.value.stored_sha256 == sha256_hex(b"original")
    assert await store.get("k/a") == b"original"


async def test_racing_writers_one_wins_no_partial_file(store: LocalObjectStore) -> None:
    payloads = [bytes([i]) * 100_000 for i in range(8)]
    results = await asyncio.gather(*(store.put("race/obj", p) for p in payloads),
                                   return_exceptions=True)
    created = [r for r in results if not isinstance(r, BaseException) and r.created]
    refused = [r for r in results if isinstance(r, ObjectExists)]
    assert len(created) == 1 and len(refused) == 7
    assert await store.get("race/obj") == payloads[results.index(created[0])]
    leftovers = [p.name for p in (store.root / "race").iterdir()]
    assert leftovers == ["obj"], "temp files are cleaned up"


async def test_list_is_sorted_and_hides_bookkeeping(store: LocalObjectStore) -> None:
    for key in ("b/2", "a/1", "a/sub/3", "ab/4"):
        await store.put(key, key.encode())
    assert await store.list() == ["a/1", "a/sub/3", "ab/4", "b/2"]
    assert await store.list("a/") == ["a/1", "a/sub/3"]
    assert await store.list("a") == ["a/1", "a/sub/3", "ab/4"]
    assert await store.list("a/s") == ["a/sub/3"]
    assert await store.list("zzz/") == []


async def test_tampering_is_detected_on_read(store: LocalObjectStore) -> None:
    await store.put("t/x", b"genuine")
    (store.root / "t/x").chmod(0o600)
    (store.root / "t/x").write_bytes(b"forged!")
    with pytest.raises(ObjectCorrupted):
        await store.get("t/x")
    with pytest.raises(ObjectCorrupted):  # a retry of the original is not "already stored"
        await store.put("t/x", b"genuine")


async def test_a_missing_sidecar_is_restored_by_a_retry(store: LocalObjectStore) -> None:
    await store.put("c/x", b"data")
    side = store.root / ".meta/c/x.json"
    side.unlink()  # as if the writer died between the link and the sidecar
    assert await store.get("c/x") == b"data"
    assert not (await store.put("c/x", b"data")).created
    assert side.exists()


@pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "..", ".meta/x", "a/.hidden",
                                 "a/b c", "a\\b", "trailing/", "é"])
async def test_invalid_keys(store: LocalObjectStore, key: str) -> None:
    with pytest.raises(InvalidKey):
        await store.put(key, b"x")


async def test_key_and_prefix_collisions(store: LocalObjectStore) -> None:
    await store.put("p/q", b"1")
    with pytest.raises(InvalidKey):
        await store.put("p/q/r", b"2")
    with pytest.raises(InvalidKey):
        await store.put("p", b"3")


@pytest.mark.parametrize("meta", [{"Upper": "x"}, {"sha256": "x"}, {"k": "é"}, {"k": "a\nb"}])
async def test_metadata_must_be_portable(store: LocalObjectStore, meta: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        await store.put("m/x", b"x", metadata=meta)
