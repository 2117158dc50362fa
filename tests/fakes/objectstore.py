"""An in-memory object store for the :mod:`vanta.application.ports.objectstore` port.

It keeps the port's promises: keys, prefixes and metadata are validated with the port's own
rules; ``put`` is create-only (the same bytes again return ``created=False``, different
bytes raise :class:`ObjectExists` and keep the original); ``get`` checks the bytes against
the SHA-256 recorded at write time (:class:`ObjectCorrupted`); ``list`` is sorted. Every
operation completes without awaiting, so concurrent writers on one event loop have exactly one
winner.

It is deliberately as strict as the strictest adapter: like the local directory store it
refuses a key that is a directory-prefix of another (``a/b`` next to ``a/b/c``), so code that
passes on the fake also passes on the local store and on S3. Test controls: :meth:`tamper`
replaces stored bytes behind the store's back; :meth:`fail_next` makes the next calls raise
(e.g. :class:`ObjectStoreUnavailable`). The contract suite
(``tests/contract/test_objectstore_contract.py``) runs it beside the local store and S3.
"""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass

from vanta.application.ports.objectstore import (
    InvalidKey,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectRef,
    ObjectStoreError,
    ObjectStoreUnavailable,
    sha256_hex,
    validate_key,
    validate_metadata,
    validate_prefix,
)

__all__ = ["FakeObjectStore", "StoredObject"]


@dataclass(frozen=True, slots=True)
class StoredObject:
    data: bytes
    sha256: str  # recorded at write time
    content_type: str
    metadata: Mapping[str, str]


class FakeObjectStore:
    def __init__(self) -> None:
        self.objects: dict[str, StoredObject] = {}
        self._failures: list[ObjectStoreError] = []

    def __repr__(self) -> str:
        return f"FakeObjectStore({len(self.objects)} objects)"

    async def put(self, key: str, data: bytes, *,
                  content_type: str = "application/octet-stream",
                  metadata: Mapping[str, str] | None = None) -> ObjectRef:
        validate_key(key)
        meta = validate_metadata(metadata)
        self._maybe_fail()
        data = bytes(data)
        sha = sha256_hex(data)
        stored = self.objects.get(key)
        if stored is not None:
            actual = sha256_hex(stored.data)
            if actual != stored.sha256:
                raise ObjectCorrupted(key, expected=stored.sha256, actual=actual)
            if actual != sha:
                raise ObjectExists(key, stored_sha256=actual, new_sha256=sha)
            return ObjectRef(key, sha, len(data), created=False)
        self._check_no_collision(key)
        self.objects[key] = StoredObject(data, sha, content_type, meta)
        return ObjectRef(key, sha, len(data), created=True)

    async def get(self, key: str) -> bytes:
        validate_key(key)
        self._maybe_fail()
        stored = self.objects.get(key)
        if stored is None:
            raise ObjectNotFound(key)
        actual = sha256_hex(stored.data)
        if actual != stored.sha256:
            raise ObjectCorrupted(key, expected=stored.sha256, actual=actual)
        return stored.data

    async def exists(self, key: str) -> bool:
        validate_key(key)
        self._maybe_fail()
        return key in self.objects

    async def list(self, prefix: str = "") -> builtins.list[str]:
        validate_prefix(prefix)
        self._maybe_fail()
        return sorted(k for k in self.objects if k.startswith(prefix))

    # -- test controls ----------------------------------------------------------------------

    def tamper(self, key: str, data: bytes) -> None:
        """Replace the stored bytes, keeping the recorded SHA-256 (as an intruder would)."""
        old = self.objects[key]
        self.objects[key] = StoredObject(bytes(data), old.sha256, old.content_type,
                                         old.metadata)

    def fail_next(self, error: ObjectStoreError | None = None, times: int = 1) -> None:
        for _ in range(times):
            self._failures.append(error or ObjectStoreUnavailable("injected outage"))

    def _maybe_fail(self) -> None:
        if self._failures:
            raise self._failures.pop(0)

    def _check_no_collision(self, key: str) -> None:
        parts = key.split("/")
        for i in range(1, len(parts)):
            if "/".join(parts[:i]) in self.objects:
                raise InvalidKey(f"{key!r}: a part of its path is an object here")
        if any(k.startswith(key + "/") for k in self.objects):
            raise InvalidKey(f"{key!r} is a prefix of other keys here")
