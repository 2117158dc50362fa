"""An in-memory secret store for the :mod:`vanta.application.ports.secrets` port.

Behaves as :class:`vanta.adapters.secrets.local.LocalSecretStore` does, without a disk or a
master key: ``put`` returns ``mem:<name>`` and replaces an earlier value of the name; ``get``
and ``delete`` of a missing reference raise :class:`SecretNotFound` (a ``KeyError``, like the
local store's); malformed names and references raise ``ValueError``. It also records which
references were read, and ``fail_next_get`` makes the next reads raise (an unreadable
store), so callers' error paths can be tested. The contract suite
(``tests/contract/test_secrets_contract.py``) holds it to the local store's behaviour.
"""

from __future__ import annotations

__all__ = ["SCHEME", "FakeSecretStore", "SecretNotFound"]

SCHEME = "mem"


class SecretNotFound(KeyError):
    """No secret is stored under this reference."""


class FakeSecretStore:
    def __init__(self) -> None:
        self._values: dict[str, bytes] = {}
        self.reads: list[str] = []
        self._failures: list[Exception] = []

    def __repr__(self) -> str:  # never the values
        return f"FakeSecretStore({len(self._values)} secrets)"

    def put(self, name: str, value: bytes) -> str:
        _check_name(name)
        if not isinstance(value, bytes | bytearray):
            raise TypeError("secret value must be bytes")
        self._values[name] = bytes(value)
        return f"{SCHEME}:{name}"

    def get(self, ref: str) -> bytes:
        name = _parse_ref(ref)
        self.reads.append(ref)
        if self._failures:
            raise self._failures.pop(0)
        try:
            return self._values[name]
        except KeyError:
            raise SecretNotFound(ref) from None

    def delete(self, ref: str, *, missing_ok: bool = False) -> None:
        name = _parse_ref(ref)
        if self._values.pop(name, None) is None and not missing_ok:
            raise SecretNotFound(ref)

    def exists(self, ref: str) -> bool:
        return _parse_ref(ref) in self._values

    def fail_next_get(self, error: Exception | None = None, times: int = 1) -> None:
        """The next ``times`` reads raise ``error`` (default: a decryption failure)."""
        for _ in range(times):
            self._failures.append(error or RuntimeError("secret cannot be decrypted"))

    def names(self) -> list[str]:
        return sorted(self._values)


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ValueError("secret name must be a non-empty string")
    if "\x00" in name:
        raise ValueError("secret name must not contain NUL")


def _parse_ref(ref: str) -> str:
    if not isinstance(ref, str):
        raise TypeError("secret reference must be a string")
    scheme, sep, name = ref.partition(":")
    if not sep or scheme != SCHEME:
        raise ValueError(f"not a {SCHEME}: secret reference: {ref!r}")
    _check_name(name)
    return name
