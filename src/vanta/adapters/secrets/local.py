"""Encrypted file-per-secret store for the embedded profile.

Values are Fernet-encrypted under a master key taken from the constructor, else the
``VANTA_MASTER_KEY`` environment variable, else ``<directory>/master.key`` (created 0600 on
first use). The key file sits next to the secrets it encrypts, so a copy of the folder
decrypts them all: a convenience for the embedded profile only. ``allow_key_file=False`` (the
production profile) refuses to fall back to it (:class:`MasterKeyRequired`).
Each secret lives in its own file named after a hash of its name and is written
atomically, so several processes may read and write distinct names at once.

With a ``key_wrapper`` (envelope encryption), each put encrypts under a fresh data key and
stores that key wrapped by the :class:`KeyWrapper` (a KMS, or :class:`LocalKeyWrapper`) in the
same file; no master key is used for new writes. Files written without a wrapper still read
with the master key, so a store can switch to envelopes without rewriting its secrets.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from vanta.adapters.private_files import (
    DIR_MODE,
    create_once,
    fsync_dir,
    read_valid,
    write_temp,
)
from vanta.application.ports.secrets import KeyWrapper

__all__ = ["SCHEME", "LocalSecretStore", "MasterKeyRequired", "SecretNotFound",
           "SecretUnreadable"]

SCHEME = "local"
MASTER_KEY_ENV = "VANTA_MASTER_KEY"
MASTER_KEY_FILE = "master.key"
_SUFFIX = ".secret"
_NAME_TAG_BYTES = 32  # sha256(name) prefixed to the plaintext: binds a ciphertext to its name
_ENVELOPE = b"vanta-envelope-v1\n"  # then the wrapped data key (base64), "\n", the token


class SecretNotFound(KeyError):
    """No secret is stored under this reference."""


class SecretUnreadable(Exception):
    """A stored secret cannot be decrypted (wrong master key, tampering or corruption)."""


def _name_digest(name: str) -> bytes:
    return hashlib.sha256(name.encode("utf-8")).digest()


class MasterKeyRequired(RuntimeError):
    """No external master key was given and the key file next to the secrets is not allowed."""


class LocalSecretStore:
    """Fernet-encrypted secrets on local disk, addressed by ``local:<name>`` references."""

    def __init__(self, directory: Path, master_key: bytes | None = None, *,
                 allow_key_file: bool = True, key_wrapper: KeyWrapper | None = None) -> None:
        self._directory = Path(directory)
        self._wrapper = key_wrapper
        self._fernet: Fernet | None = None
        self._allow_key_file = allow_key_file
        self._lock = threading.Lock()
        if master_key is not None:
            self._fernet = self._make_fernet(master_key, "master_key argument")

    def __repr__(self) -> str:
        return f"{type(self).__name__}(directory={str(self._directory)!r})"

    @property
    def directory(self) -> Path:
        """Directory holding the secret files."""
        return self._directory

    # -- public API --------------------------------------------------------------------------

    def put(self, name: str, value: bytes) -> str:
        """Encrypt and store ``value`` under ``name`` (replacing it); return ``local:<name>``."""
        self._check_name(name)
        if not isinstance(value, bytes | bytearray):
            raise TypeError("secret value must be bytes")
        token = self._seal(_name_digest(name) + bytes(value))
        self._ensure_dir()
        tmp = write_temp(self._directory, token)
        try:
            os.replace(tmp, self._path(name))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(self._directory)
        return f"{SCHEME}:{name}"

    def get(self, ref: str) -> bytes:
        """Return the decrypted value; raise SecretNotFound if absent."""
        name = self._parse_ref(ref)
        try:
            token = self._path(name).read_bytes()
        except FileNotFoundError:
            raise SecretNotFound(ref) from None
        try:
            plain = self._open(token)
        except (InvalidToken, ValueError):
            raise SecretUnreadable(f"secret {ref!r} cannot be decrypted") from None
        tag, value = plain[:_NAME_TAG_BYTES], plain[_NAME_TAG_BYTES:]
        if tag != _name_digest(name):
            raise SecretUnreadable(f"secret file for {ref!r} belongs to another name")
        return value

    def delete(self, ref: str, *, missing_ok: bool = False) -> None:
        """Remove a secret; raise SecretNotFound if absent unless ``missing_ok``."""
        name = self._parse_ref(ref)
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            if not missing_ok:
                raise SecretNotFound(ref) from None
            return
        fsync_dir(self._directory)

    def exists(self, ref: str) -> bool:
        """Whether a secret is stored under ``ref``."""
        return self._path(self._parse_ref(ref)).is_file()

    @staticmethod
    def generate_master_key() -> bytes:
        """Return a new Fernet master key (url-safe base64, 44 bytes)."""
        return Fernet.generate_key()

    # -- internals ---------------------------------------------------------------------------

    def _seal(self, plain: bytes) -> bytes:
        if self._wrapper is None:
            return self._get_fernet().encrypt(plain)
        data_key = Fernet.generate_key()
        wrapped = base64.urlsafe_b64encode(self._wrapper.wrap(data_key))
        return _ENVELOPE + wrapped + b"\n" + Fernet(data_key).encrypt(plain)

    def _open(self, stored: bytes) -> bytes:
        """Decrypt a file's bytes; raises InvalidToken or ValueError when it cannot."""
        if not stored.startswith(_ENVELOPE):
            return self._get_fernet().decrypt(stored)
        if self._wrapper is None:
            raise ValueError("an envelope-encrypted secret needs the store's key wrapper")
        wrapped, sep, token = stored[len(_ENVELOPE):].partition(b"\n")
        if not sep:
            raise ValueError("truncated envelope")
        data_key = self._wrapper.unwrap(base64.urlsafe_b64decode(wrapped))
        return Fernet(data_key).decrypt(token)

    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("secret name must be a non-empty string")
        if "\x00" in name:
            raise ValueError("secret name must not contain NUL")

    def _parse_ref(self, ref: str) -> str:
        if not isinstance(ref, str):
            raise TypeError("secret reference must be a string")
        scheme, sep, name = ref.partition(":")
        if not sep or scheme != SCHEME:
            raise ValueError(f"not a {SCHEME}: secret reference: {ref!r}")
        self._check_name(name)
        return name

    def _path(self, name: str) -> Path:
        return self._directory / (hashlib.sha256(name.encode("utf-8")).hexdigest() + _SUFFIX)

    def _ensure_dir(self) -> None:
        self._directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)

    @staticmethod
    def _make_fernet(key: bytes | str, source: str) -> Fernet:
        try:
            return Fernet(key.strip())
        except (ValueError, TypeError):
            # Never echo the key itself.
            raise ValueError(f"invalid Fernet master key from {source}") from None

    def _get_fernet(self) -> Fernet:
        if self._fernet is not None:
            return self._fernet
        with self._lock:
            if self._fernet is None:
                env = os.environ.get(MASTER_KEY_ENV)
                if env:
                    self._fernet = self._make_fernet(env.encode("ascii", "replace"), MASTER_KEY_ENV)
                elif not self._allow_key_file:
                    raise MasterKeyRequired(f"set {MASTER_KEY_ENV}: a key file next to the "
                                            "secrets is not allowed here")
                else:
                    self._fernet = self._make_fernet(self._load_or_create_key_file(),
                                                     str(self._key_path))
            return self._fernet

    @property
    def _key_path(self) -> Path:
        return self._directory / MASTER_KEY_FILE

    def _load_or_create_key_file(self) -> bytes:
        """Read ``master.key``, creating it atomically (0600) if absent; race-safe."""
        path = self._key_path
        if not path.exists():
            self._ensure_dir()
            create_once(path, Fernet.generate_key())

        def parse(raw: bytes) -> bytes:
            Fernet(raw.strip())  # raises ValueError while a writer is mid-write
            return raw.strip()

        return read_valid(path, parse)
