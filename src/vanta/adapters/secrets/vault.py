"""Secrets in HashiCorp Vault (or OpenBao): the KV version 2 engine, through ``hvac``.

The database keeps ``vault:<path>`` references, ``<path>`` being the secret's path inside the
KV mount (the configured prefix followed by the secret's name); ``vault:<path>#<version>``
reads one pinned version. ``put`` returns the unpinned reference, so a put under the same name
replaces what the reference reads (the store contract); the application rotates webhook keys
under new names anyway. Values are bytes, kept base64-encoded in one field of the KV entry.

Authentication is a token, or an AppRole role_id/secret_id pair logged in at first use and
again once when Vault answers 403 (the AppRole token expired). Nothing here logs a value or a
credential, and ``repr`` shows neither.
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import hvac
import hvac.exceptions
import requests

from vanta.adapters.secrets.local import SecretNotFound, SecretUnreadable

__all__ = ["SCHEME", "VaultConfig", "VaultSecretStore", "VaultUnavailable"]

SCHEME = "vault"
_FIELD = "value_b64"
T = TypeVar("T")


class VaultUnavailable(RuntimeError):
    """Vault refused or could not be reached (sealed, down, bad credentials)."""


@dataclass(frozen=True)
class VaultConfig:
    addr: str
    mount: str = "secret"
    prefix: str = "vanta/"
    token: str | None = field(default=None, repr=False)
    role_id: str | None = field(default=None, repr=False)
    secret_id: str | None = field(default=None, repr=False)
    approle_mount: str = "approle"
    timeout_seconds: float = 10.0
    verify: bool | str = True  # a CA bundle path, or False for a dev server only

    def __post_init__(self) -> None:
        if not self.token and not (self.role_id and self.secret_id):
            raise ValueError("Vault needs a token, or an AppRole role_id and secret_id")


class VaultSecretStore:
    """SecretStore over a KV v2 mount; addressed by ``vault:<path>[#<version>]``."""

    def __init__(self, config: VaultConfig, *,
                 client_factory: Callable[[], hvac.Client] | None = None) -> None:
        self._config = config
        self._prefix = config.prefix.strip("/") + "/" if config.prefix.strip("/") else ""
        self._factory = client_factory or self._new_client
        self._client: hvac.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        c = self._config
        return f"{type(self).__name__}(addr={c.addr!r}, mount={c.mount!r}, prefix={self._prefix!r})"

    # -- public API --------------------------------------------------------------------------

    def put(self, name: str, value: bytes) -> str:
        """Write ``value`` as a new version of ``<prefix><name>``; return ``vault:<path>``."""
        self._check_name(name)
        if not isinstance(value, bytes | bytearray):
            raise TypeError("secret value must be bytes")
        path = self._prefix + name
        payload = {_FIELD: base64.b64encode(bytes(value)).decode("ascii")}
        self._call(lambda kv: kv.create_or_update_secret(
            path=path, secret=payload, mount_point=self._config.mount))
        return f"{SCHEME}:{path}"

    def get(self, ref: str) -> bytes:
        """Return the value (latest, or the pinned version); raise SecretNotFound if absent."""
        path, version = self._parse_ref(ref)
        try:
            answer = self._call(lambda kv: kv.read_secret_version(
                path=path, version=version, mount_point=self._config.mount,
                raise_on_deleted_version=True))
        except hvac.exceptions.InvalidPath:
            raise SecretNotFound(ref) from None
        data = ((answer or {}).get("data") or {}).get("data") or {}
        encoded = data.get(_FIELD)
        if not isinstance(encoded, str):
            raise SecretUnreadable(f"secret {ref!r} has no {_FIELD} field")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise SecretUnreadable(f"secret {ref!r} is not valid base64") from None

    def delete(self, ref: str, *, missing_ok: bool = False) -> None:
        """Remove every version and the metadata; raise SecretNotFound if absent."""
        path, _ = self._parse_ref(ref)
        mount = self._config.mount
        try:
            self._call(lambda kv: kv.read_secret_metadata(path=path, mount_point=mount))
        except hvac.exceptions.InvalidPath:
            if missing_ok:
                return
            raise SecretNotFound(ref) from None
        self._call(lambda kv: kv.delete_metadata_and_all_versions(path=path, mount_point=mount))

    # -- internals ---------------------------------------------------------------------------

    @staticmethod
    def _check_name(name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("secret name must be a non-empty string")
        if "\x00" in name:
            raise ValueError("secret name must not contain NUL")
        # Vault normalises paths: empty or dot segments would alias another secret.
        parts = name.split("/")
        if any(p in ("", ".", "..") for p in parts) or "#" in name:
            raise ValueError("secret name must be '/'-separated non-empty segments, "
                             "without '.', '..' or '#'")

    def _parse_ref(self, ref: str) -> tuple[str, int | None]:
        if not isinstance(ref, str):
            raise TypeError("secret reference must be a string")
        scheme, sep, rest = ref.partition(":")
        if not sep or scheme != SCHEME:
            raise ValueError(f"not a {SCHEME}: secret reference: {ref!r}")
        path, pin, version = rest.partition("#")
        self._check_name(path)
        if not pin:
            return path, None
        if not version.isdigit() or int(version) < 1:
            raise ValueError(f"bad version in secret reference: {ref!r}")
        return path, int(version)

    def _new_client(self) -> hvac.Client:
        c = self._config
        client = hvac.Client(url=c.addr, token=c.token, timeout=c.timeout_seconds,
                             verify=c.verify)
        if not c.token:
            client.auth.approle.login(role_id=c.role_id, secret_id=c.secret_id,
                                      mount_point=c.approle_mount)
        return client

    def _kv(self, *, fresh: bool = False) -> Any:
        with self._lock:
            if self._client is None or fresh:
                try:
                    self._client = self._factory()
                except hvac.exceptions.VaultError as exc:
                    raise VaultUnavailable(f"Vault login failed: {type(exc).__name__}") from None
            return self._client.secrets.kv.v2

    def _call(self, op: Callable[[Any], T]) -> T:
        """Run ``op`` on the KV v2 API; after a 403 with AppRole, log in again once. A missing
        path stays ``InvalidPath``; any other failure is :class:`VaultUnavailable`."""
        try:
            return self._guarded(op, fresh=False)
        except hvac.exceptions.Forbidden:
            if self._config.token:
                raise VaultUnavailable("Vault refused the token (403)") from None
        try:
            return self._guarded(op, fresh=True)
        except hvac.exceptions.Forbidden:
            raise VaultUnavailable("Vault refused the AppRole login's token (403)") from None

    def _guarded(self, op: Callable[[Any], T], *, fresh: bool) -> T:
        try:
            return op(self._kv(fresh=fresh))
        except (hvac.exceptions.Forbidden, hvac.exceptions.InvalidPath):
            raise
        except hvac.exceptions.VaultError as exc:  # sealed, down, 5xx, bad request
            raise VaultUnavailable(f"Vault answered {type(exc).__name__}") from None
        except requests.exceptions.RequestException as exc:
            raise VaultUnavailable(f"Vault is unreachable: {type(exc).__name__}") from None
