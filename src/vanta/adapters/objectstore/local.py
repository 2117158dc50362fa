"""A directory as an object store, for the embedded profile.

Layout under ``root``: each object at ``root/<key>`` (so the tree can be browsed and copied
with ordinary tools) and a sidecar ``root/.meta/<key>.json`` holding its SHA-256, size,
content type and metadata. Files are 0600, directories 0700.

Writes are atomic and create-only: the bytes go to a fsynced temp file in the target
directory, which is then hard-linked to the final name. ``link`` fails if the name exists,
so of two racing writers exactly one creates the object and a reader never sees a partial
file. The sidecar is written after the link, by the writer that created the object; an
object left without a sidecar by a crash in between is still whole (the link only ever
exposes complete, fsynced files), is read unverified, and gets its sidecar back on the next
``put`` of the same bytes. Needs a filesystem with hard links (any local POSIX filesystem).

Keys that are prefixes of other keys as directories (``a/b`` and ``a/b/c``) cannot both exist
here, unlike on S3; :class:`InvalidKey` says so.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from vanta.adapters.private_files import DIR_MODE, fsync_dir, write_temp
from vanta.application.ports.objectstore import (
    InvalidKey,
    ObjectCorrupted,
    ObjectExists,
    ObjectNotFound,
    ObjectRef,
    sha256_hex,
    validate_key,
    validate_metadata,
    validate_prefix,
)

META_DIR = ".meta"


class LocalObjectStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # -- the port ---------------------------------------------------------------------------

    async def put(self, key: str, data: bytes, *,
                  content_type: str = "application/octet-stream",
                  metadata: Mapping[str, str] | None = None) -> ObjectRef:
        validate_key(key)
        meta = validate_metadata(metadata)
        return await asyncio.to_thread(self._put, key, bytes(data), content_type, meta)

    async def get(self, key: str) -> bytes:
        validate_key(key)
        return await asyncio.to_thread(self._get, key)

    async def exists(self, key: str) -> bool:
        validate_key(key)
        return await asyncio.to_thread(self._data_path(key).is_file)

    async def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list, prefix)

    # -- blocking work ----------------------------------------------------------------------

    def _data_path(self, key: str) -> Path:
        return self.root / key

    def _meta_path(self, key: str) -> Path:
        return self.root / META_DIR / f"{key}.json"

    def _read_sidecar(self, key: str) -> dict[str, object] | None:
        try:
            doc = json.loads(self._meta_path(key).read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {}  # unreadable: treated as recording nothing we can trust
        return doc if isinstance(doc, dict) else {}

    def _existing(self, key: str, path: Path, sha: str, size: int,
                  content_type: str, meta: dict[str, str]) -> ObjectRef:
        """Compare with the bytes actually stored, never with the sidecar alone."""
        actual = sha256_hex(path.read_bytes())
        side = self._read_sidecar(key)
        if side is not None and side.get("sha256") != actual:
            raise ObjectCorrupted(key, expected=str(side.get("sha256")), actual=actual)
        if actual != sha:
            raise ObjectExists(key, stored_sha256=actual, new_sha256=sha)
        if side is None:  # a crash after the link: restore the sidecar
            self._write_sidecar(key, sha, size, content_type, meta)
        return ObjectRef(key, sha, size, created=False)

    def _put(self, key: str, data: bytes, content_type: str,
             meta: dict[str, str]) -> ObjectRef:
        path = self._data_path(key)
        sha, size = sha256_hex(data), len(data)
        if path.is_dir():
            raise InvalidKey(f"{key!r} is a prefix of other keys here")
        if path.is_file():
            return self._existing(key, path, sha, size, content_type, meta)
        try:
            path.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as e:
            raise InvalidKey(f"{key!r}: a part of its path is an object here") from e
        tmp = write_temp(path.parent, data)
        try:
            os.link(tmp, path)
        except FileExistsError:  # another writer won the race
            return self._existing(key, path, sha, size, content_type, meta)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        fsync_dir(path.parent)
        self._write_sidecar(key, sha, size, content_type, meta)
        return ObjectRef(key, sha, size, created=True)

    def _write_sidecar(self, key: str, sha: str, size: int, content_type: str,
                       meta: dict[str, str]) -> None:
        side = self._meta_path(key)
        side.parent.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
        body = json.dumps({"sha256": sha, "size": size, "content_type": content_type,
                           "metadata": meta}, sort_keys=True).encode()
        tmp = write_temp(side.parent, body)
        try:
            os.replace(tmp, side)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(side.parent)

    def _get(self, key: str) -> bytes:
        path = self._data_path(key)
        try:
            data = path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise ObjectNotFound(key) from None
        side = self._read_sidecar(key)
        if side is not None:
            expected = side.get("sha256")
            actual = sha256_hex(data)
            if expected != actual:
                raise ObjectCorrupted(key, expected=str(expected), actual=actual)
        return data

    def _list(self, prefix: str) -> builtins.list[str]:
        base = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        start = self.root / base if base else self.root
        if not start.is_dir():
            return []
        keys: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith("."):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)
