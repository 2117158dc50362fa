"""The published public key document (``/.well-known/vanta-replay-keys.json``) and reading a
public key an auditor pins (that document, or the key alone in base64)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from vanta.application.ports.signing import Signer, key_id_of

__all__ = ["PublicKeyUnreadable", "keys_document", "parse_public_key"]


class PublicKeyUnreadable(ValueError):
    pass


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keys_document(signer: Signer) -> dict[str, Any]:
    """A JWKS-shaped set (RFC 8037 OKP keys) with the platform's signing key."""
    return {"keys": [{"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA",
                      "kid": signer.key_id, "x": _b64url(signer.public_key())}]}


def parse_public_key(text: bytes, kid: str | None = None) -> bytes:
    """The raw key from a keys document (the key named ``kid``, else the first) or from
    base64 / base64url text."""
    stripped = text.strip()
    if stripped.startswith(b"{"):
        try:
            keys = json.loads(stripped)["keys"]
            chosen = next((k for k in keys if kid is None or k.get("kid") == kid), None)
            if chosen is None:
                raise PublicKeyUnreadable(f"the keys document has no key {kid}")
            raw = base64.urlsafe_b64decode(chosen["x"] + "=" * (-len(chosen["x"]) % 4))
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            if isinstance(e, PublicKeyUnreadable):
                raise
            raise PublicKeyUnreadable(f"not a keys document: {e}") from None
    else:
        try:
            raw = base64.urlsafe_b64decode(
                stripped.replace(b"+", b"-").replace(b"/", b"_") + b"=" * (-len(stripped) % 4))
        except (ValueError, binascii.Error):
            raise PublicKeyUnreadable("the public key is neither a keys document nor "
                                      "base64") from None
    if len(raw) != 32:
        raise PublicKeyUnreadable(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    if kid is not None and key_id_of(raw) != kid:
        raise PublicKeyUnreadable(f"the key's id is {key_id_of(raw)}, not {kid}")
    return raw
