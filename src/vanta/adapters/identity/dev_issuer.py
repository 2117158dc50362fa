"""Built-in development token issuer for the embedded profile.

Holds one RSA-2048 signing key in a PEM file (created 0600 on first use, race-safe across
processes), signs RS256 access tokens and publishes the public half as a JWKS, so tokens are
verified exactly like those of an external OIDC provider.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from vanta.adapters.private_files import create_once, read_valid

__all__ = ["ALGORITHM", "DevIssuer", "jwk_thumbprint"]

ALGORITHM = "RS256"
_KEY_SIZE = 2048
_PUBLIC_EXPONENT = 65537
# RFC 7638 §3.2: required members per key type, in the thumbprint's canonical form.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "oct": ("k", "kty"),
}


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint: base64url (unpadded) SHA-256 of the canonical required members."""
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ValueError(f"unsupported kty for thumbprint: {jwk.get('kty')!r}")
    canonical = json.dumps({m: jwk[m] for m in members}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _parse_key(pem: bytes, source: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError(f"{source} does not hold an RSA private key")
    if key.key_size < _KEY_SIZE:
        raise ValueError(f"{source} holds a {key.key_size}-bit RSA key; need >= {_KEY_SIZE}")
    return key


def _load_or_create_key(path: Path) -> rsa.RSAPrivateKey:
    """Read the PEM key at ``path``, creating it atomically (0600) if absent; race-safe."""
    if not path.exists():
        new_key = rsa.generate_private_key(public_exponent=_PUBLIC_EXPONENT, key_size=_KEY_SIZE)
        create_once(path, new_key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.NoEncryption(),
        ))
    # Always re-read: the winner of a creation race defines the key.
    return read_valid(path, lambda pem: _parse_key(pem, path))


class DevIssuer:
    """Signs RS256 bearer tokens with a locally stored key and publishes its JWKS."""

    def __init__(self, key_path: Path, issuer: str, audience: str) -> None:
        if not issuer:
            raise ValueError("issuer must be a non-empty string")
        if not audience:
            raise ValueError("audience must be a non-empty string")
        self._key_path = Path(key_path)
        self._issuer = issuer
        self._audience = audience
        self._private_key = _load_or_create_key(self._key_path)
        public = RSAAlgorithm.to_jwk(self._private_key.public_key(), as_dict=True)
        self._kid = jwk_thumbprint(public)
        self._public_jwk: dict[str, Any] = {
            "kty": "RSA",
            "n": public["n"],
            "e": public["e"],
            "kid": self._kid,
            "alg": ALGORITHM,
            "use": "sig",
        }

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(key_path={str(self._key_path)!r}, "
                f"issuer={self._issuer!r}, kid={self._kid!r})")

    @property
    def issuer(self) -> str:
        """The ``iss`` claim of issued tokens."""
        return self._issuer

    @property
    def audience(self) -> str:
        """The ``aud`` claim of issued tokens."""
        return self._audience

    @property
    def kid(self) -> str:
        """Key id: the RFC 7638 thumbprint of the public key."""
        return self._kid

    @property
    def key_path(self) -> Path:
        """Where the private key PEM lives."""
        return self._key_path

    def issue(
        self,
        subject: str,
        tenant_id: str,
        scopes: Iterable[str],
        *,
        ttl_seconds: int = 3600,
        roles: Iterable[str] = (),
        follower_id: str | None = None,
        vault_ids: Iterable[str] | None = None,
        now: int | None = None,
    ) -> str:
        """Return a signed RS256 access token for ``subject`` in ``tenant_id``."""
        if not subject:
            raise ValueError("subject must be a non-empty string")
        if not tenant_id:
            raise ValueError("tenant_id must be a non-empty string")
        if ttl_seconds <= 0:
            raise ValueError("ttl_seconds must be positive")
        if isinstance(scopes, str):
            raise TypeError("scopes must be an iterable of scope strings, not a string")
        scope_set = set(scopes)
        for s in scope_set:
            if not s or any(c.isspace() for c in s):
                raise ValueError(f"invalid scope {s!r}: must be non-empty without whitespace")
        issued_at = int(time.time()) if now is None else int(now)
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": subject,
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + ttl_seconds,
            "jti": secrets.token_urlsafe(16),
            "tenant_id": tenant_id,
            "scope": " ".join(sorted(scope_set)),
            "roles": sorted(set(roles)),
        }
        if follower_id is not None:
            claims["follower_id"] = follower_id
        if vault_ids is not None:
            claims["vault_ids"] = sorted(set(vault_ids))
        return jwt.encode(claims, self._private_key, algorithm=ALGORITHM,
                          headers={"kid": self._kid})

    def jwks(self) -> dict[str, Any]:
        """The public JWK Set (one RS256 signing key)."""
        return {"keys": [dict(self._public_jwk)]}
