"""Object storage: immutable blobs under string keys.

The port every implementation follows (``vanta.adapters.objectstore.local.LocalObjectStore``
for the embedded profile, ``vanta.adapters.objectstore.s3.S3ObjectStore`` for any
S3-compatible store):

* ``put(key, data, content_type=, metadata=)`` writes once. Putting the *same bytes* again is
  a no-op that returns the stored object's reference with ``created=False`` (so a retried
  export is harmless); putting *different* bytes under an existing key raises
  :class:`ObjectExists`. Metadata is not part of an object's identity: only its bytes are.
* ``get(key)`` returns the bytes, after checking them against the SHA-256 recorded at write
  time where the store kept one (:class:`ObjectCorrupted` otherwise).
* ``exists(key)``, ``list(prefix)`` (keys, sorted).

Keys are relative, ``/``-separated paths of ``[A-Za-z0-9._=+@-]`` segments; no segment is
empty, ``.`` or ``..``, or starts with a dot (the local store keeps its bookkeeping there).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "MAX_KEY_LENGTH",
    "SHA256_METADATA_KEY",
    "InvalidKey",
    "ObjectCorrupted",
    "ObjectExists",
    "ObjectNotFound",
    "ObjectRef",
    "ObjectStore",
    "ObjectStoreAccessDenied",
    "ObjectStoreError",
    "ObjectStoreUnavailable",
    "sha256_hex",
    "validate_key",
    "validate_metadata",
    "validate_prefix",
]

MAX_KEY_LENGTH = 1024
SHA256_METADATA_KEY = "sha256"  # user metadata the stores record the content hash under
_SEGMENT = re.compile(r"[A-Za-z0-9_=+@-][A-Za-z0-9._=+@-]*")
_META_KEY = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
MAX_METADATA_BYTES = 2048  # S3's limit for all user metadata together


@dataclass(frozen=True, slots=True)
class ObjectRef:
    key: str
    sha256: str  # hex digest of the bytes
    size: int
    etag: str | None = None  # the store's own tag, when it has one (S3)
    created: bool = True  # False: identical bytes were already stored (an idempotent retry)


class ObjectStoreError(Exception):
    """Base of every object store failure."""


class InvalidKey(ObjectStoreError, ValueError):
    pass


class ObjectExists(ObjectStoreError):
    """The key already holds different bytes; stored objects are never replaced."""

    def __init__(self, key: str, *, stored_sha256: str | None, new_sha256: str) -> None:
        super().__init__(f"object {key!r} already exists with different content "
                         f"(stored sha256 {stored_sha256 or 'unknown'}, new {new_sha256})")
        self.key = key
        self.stored_sha256 = stored_sha256
        self.new_sha256 = new_sha256


class ObjectNotFound(ObjectStoreError, KeyError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"object {self.key!r} not found"


class ObjectCorrupted(ObjectStoreError):
    """The stored bytes no longer match the SHA-256 recorded when they were written."""

    def __init__(self, key: str, *, expected: str, actual: str) -> None:
        super().__init__(f"object {key!r} does not match its recorded sha256 "
                         f"(recorded {expected}, read {actual})")
        self.key = key
        self.expected = expected
        self.actual = actual


class ObjectStoreAccessDenied(ObjectStoreError):
    """Credentials missing, unknown or wrong, or not allowed to do this."""


class ObjectStoreUnavailable(ObjectStoreError):
    """The store could not be reached or answered with a server error."""


@runtime_checkable
class ObjectStore(Protocol):
    async def put(self, key: str, data: bytes, *,
                  content_type: str = "application/octet-stream",
                  metadata: Mapping[str, str] | None = None) -> ObjectRef: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def list(self, prefix: str = "") -> list[str]: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def validate_key(key: str) -> str:
    if not isinstance(key, str) or not key:
        raise InvalidKey("an object key must be a non-empty string")
    if len(key.encode()) > MAX_KEY_LENGTH:
        raise InvalidKey(f"object key longer than {MAX_KEY_LENGTH} bytes")
    for segment in key.split("/"):
        if not _SEGMENT.fullmatch(segment) or segment in (".", ".."):
            raise InvalidKey(f"invalid object key {key!r}: segments are [A-Za-z0-9._=+@-], "
                             "not empty, not starting with a dot")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, or a key fragment (its last segment may be partial)."""
    if prefix == "":
        return prefix
    body = prefix[:-1] if prefix.endswith("/") else prefix
    validate_key(body)
    return prefix


def validate_metadata(metadata: Mapping[str, str] | None) -> dict[str, str]:
    """User metadata portable to every S3-compatible store: lowercase keys, ASCII values."""
    out: dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not _META_KEY.fullmatch(k):
            raise ValueError(f"metadata key {k!r}: use lowercase letters, digits and '-'")
        if k == SHA256_METADATA_KEY:
            raise ValueError(f"metadata key {k!r} is reserved")
        if not isinstance(v, str) or not v.isascii() or not v.isprintable():
            raise ValueError(f"metadata value for {k!r} must be printable ASCII")
        out[k] = v
    if sum(len(k) + len(v) for k, v in out.items()) > MAX_METADATA_BYTES - 80:
        raise ValueError("metadata is too large")
    return out
