"""Bearer-token verification against a JWKS (the dev issuer's or a real OIDC provider's).

Only asymmetric keys published in the JWK Set are trusted. The token header is read first:
its ``alg`` must be in the allow-list (``none`` and HMAC are never accepted) and its ``kid``
must name a JWKS key; an unknown ``kid`` triggers one refresh when the JWKS comes from a
provider callable (key rotation). Signature and registered claims are then checked by PyJWT,
and ``exp``, ``nbf`` and ``iat`` must be JSON numbers (RFC 7519 NumericDate; a string or a
boolean is ``invalid_claim`` even where PyJWT would convert it).

With a callable JWKS source two optional hooks serve providers that fetch keys over the
network (:class:`vanta.adapters.identity.oidc.OidcProvider`):

* ``jwks_max_age``: the cached key set is re-read from the callable once it is older than
  this, so keys the provider retired stop being trusted even if no unknown ``kid`` shows up;
* ``on_unknown_kid``: a coroutine function :meth:`TokenVerifier.averify` awaits when a
  token's ``kid`` is unknown (a rate-limited JWKS fetch); the token is then checked once more.
  :meth:`TokenVerifier.verify` stays synchronous and never awaits anything.

A token that passed the full verification is remembered (its exact string -> the principal)
until its ``exp``, so a client that sends the same token on every call pays for one RSA check.
The memory is bounded (``cache_size``, oldest dropped first) and tied to the key set that
verified the token: once the key set is replaced (rotation) or due for a refresh, every
remembered token is verified in full again.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

import jwt
from jwt.exceptions import (
    DecodeError,
    ExpiredSignatureError,
    ImmatureSignatureError,
    InvalidAlgorithmError,
    InvalidAudienceError,
    InvalidIssuedAtError,
    InvalidIssuerError,
    InvalidKeyError,
    InvalidSignatureError,
    MissingRequiredClaimError,
    PyJWKError,
    PyJWTError,
)

from vanta.application.ports.identity import InvalidToken
from vanta.application.principal import Principal, effective_scopes

__all__ = ["DEFAULT_ALGORITHMS", "REASONS", "InvalidToken", "TokenVerifier"]

DEFAULT_ALGORITHMS: tuple[str, ...] = ("RS256", "ES256", "PS256", "EdDSA")
_REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "tenant_id")
_NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat")

REASONS: frozenset[str] = frozenset({
    "malformed",        # not a JWS compact token, bad JSON/base64, bad header or claim types
    "unsupported_alg",  # header alg not in the allow-list (incl. none and HS*)
    "unknown_kid",      # no kid, or no JWKS key with that kid (after one refresh if possible)
    "bad_key",          # JWKS key unusable for the token's alg (kty/alg mismatch)
    "bad_signature",
    "expired",
    "not_yet_valid",    # nbf or iat in the future beyond the leeway
    "bad_issuer",
    "bad_audience",
    "missing_claim",
    "invalid_claim",    # a claim is present but has the wrong type or value
})


class _UnknownKid(InvalidToken):
    """``unknown_kid`` for a kid the token names but the key set lacks (refresh may help)."""

    def __init__(self, detail: str) -> None:
        super().__init__("unknown_kid", detail)


JwksSource = Mapping[str, Any] | Callable[[], Mapping[str, Any]]


def _index_jwks(jwks: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Map kid -> raw JWK for the usable signing keys (asymmetric, ``use`` absent or sig)."""
    keys = jwks.get("keys") if isinstance(jwks, Mapping) else None
    if not isinstance(keys, list):
        raise ValueError("JWKS must be an object with a 'keys' list")
    indexed: dict[str, dict[str, Any]] = {}
    for key in keys:
        if not isinstance(key, dict):
            continue
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if key.get("kty") not in ("RSA", "EC", "OKP"):
            continue  # symmetric ("oct") or unknown key types are never trusted
        if key.get("use", "sig") != "sig":
            continue
        indexed.setdefault(kid, dict(key))  # copied; first wins on duplicate kids
    return indexed


class _KeySet:
    """An immutable snapshot of trusted JWKs plus a cache of parsed keys per (kid, alg)."""

    def __init__(self, jwks: dict[str, dict[str, Any]]) -> None:
        self.jwks = jwks
        self._parsed: dict[tuple[str, str], jwt.PyJWK] = {}

    def key_for(self, kid: str, alg: str) -> jwt.PyJWK:
        jwk = self.jwks.get(kid)
        if jwk is None:
            raise _UnknownKid(f"no JWKS key with kid {kid!r}")
        declared = jwk.get("alg")
        if declared is not None and declared != alg:
            raise InvalidToken("bad_key", f"key {kid!r} is for {declared!r}, token uses {alg!r}")
        parsed = self._parsed.get((kid, alg))
        if parsed is None:
            try:
                # Bind the key to the (allow-listed) header alg, so an RSA key without "alg"
                # also serves PS256; a kty/alg mismatch fails here.
                parsed = jwt.PyJWK(jwk, algorithm=alg)
            except (PyJWKError, InvalidKeyError, ValueError, TypeError) as e:
                raise InvalidToken("bad_key", str(e)) from None
            self._parsed[(kid, alg)] = parsed
        return parsed


class TokenVerifier:
    """Verifies JWT bearer tokens against JWKS keys and returns a :class:`Principal`."""

    def __init__(
        self,
        jwks: JwksSource,
        issuer: str,
        audience: str,
        *,
        leeway: int = 30,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        jwks_max_age: float | None = None,
        on_unknown_kid: Callable[[], Awaitable[object]] | None = None,
        cache_size: int = 4096,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(algorithms, str):
            raise TypeError("algorithms must be a sequence of names, not a string")
        algs = tuple(algorithms)
        if not algs:
            raise ValueError("at least one algorithm must be allowed")
        bad = [a for a in algs if a.lower() == "none" or a.upper().startswith("HS")]
        if bad:
            raise ValueError(f"symmetric/none algorithms cannot be trusted via JWKS: {bad}")
        if leeway < 0:
            raise ValueError("leeway must be >= 0")
        if not callable(jwks) and (jwks_max_age is not None or on_unknown_kid is not None):
            raise ValueError("jwks_max_age and on_unknown_kid need a callable JWKS source")
        if jwks_max_age is not None and not jwks_max_age > 0:
            raise ValueError("jwks_max_age must be > 0")
        if cache_size < 0:
            raise ValueError("cache_size must be >= 0")
        self._cache_size = cache_size
        self._clock = clock
        # token -> (principal, exp, key set that verified it); insertion order = age
        self._verified: dict[str, tuple[Principal, float, _KeySet]] = {}
        self._max_age = jwks_max_age
        self._on_unknown_kid = on_unknown_kid
        self._loaded_at = 0.0
        self._provider: Callable[[], Mapping[str, Any]] | None = jwks if callable(jwks) else None
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway
        self._algorithms = algs
        self._lock = threading.Lock()
        self._keyset: _KeySet | None = None
        if self._provider is None:
            assert not callable(jwks)
            self._keyset = _KeySet(_index_jwks(jwks))

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The accepted ``alg`` header values."""
        return self._algorithms

    def verify(self, token: str) -> Principal:
        """Verify ``token`` and return its principal; raise :class:`InvalidToken` otherwise."""
        if not isinstance(token, str) or not token:
            raise InvalidToken("malformed", "empty token")
        hit = self._verified.get(token)
        if hit is not None:
            principal, exp, keyset = hit
            if self._clock() < exp and keyset is self._keyset and not self._stale():
                return principal
            self._verified.pop(token, None)  # expired or keys changed: verify in full below
        try:
            header = jwt.get_unverified_header(token)
        except PyJWTError as e:
            raise InvalidToken("malformed", str(e)) from None
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._algorithms:
            raise InvalidToken("unsupported_alg", f"alg {alg!r} is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("unknown_kid", "token header has no kid")
        key, keyset = self._key_for(kid, alg)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": list(_REQUIRED_CLAIMS)},
            )
        except InvalidSignatureError as e:
            raise InvalidToken("bad_signature", str(e)) from None
        except ExpiredSignatureError as e:
            raise InvalidToken("expired", str(e)) from None
        except ImmatureSignatureError as e:
            raise InvalidToken("not_yet_valid", str(e)) from None
        except InvalidIssuerError as e:
            raise InvalidToken("bad_issuer", str(e)) from None
        except InvalidAudienceError as e:
            raise InvalidToken("bad_audience", str(e)) from None
        except MissingRequiredClaimError as e:
            raise InvalidToken("missing_claim", str(e)) from None
        except InvalidAlgorithmError as e:
            raise InvalidToken("unsupported_alg", str(e)) from None
        except InvalidKeyError as e:
            raise InvalidToken("bad_key", str(e)) from None
        except InvalidIssuedAtError as e:
            raise InvalidToken("invalid_claim", str(e)) from None
        except DecodeError as e:
            raise InvalidToken("malformed", str(e)) from None
        except PyJWTError as e:
            raise InvalidToken("invalid_claim", str(e)) from None
        _check_numeric_dates(claims)
        principal = self._principal(claims)
        self._remember(token, principal, claims["exp"], keyset)
        return principal

    async def averify(self, token: str) -> Principal:
        """:meth:`verify` for async callers, re-checking once after a key refresh.

        When the token names a ``kid`` the cached key set lacks and ``on_unknown_kid`` was
        given, that coroutine (a rate-limited JWKS refresh that must not block the event loop)
        is awaited and the token verified once more against the fresh key set. Without the
        hook this is exactly :meth:`verify`.
        """
        try:
            return self.verify(token)
        except _UnknownKid:
            if self._on_unknown_kid is None:
                raise
        await self._on_unknown_kid()
        return self.verify(token)

    # -- internals ---------------------------------------------------------------------------

    def _remember(self, token: str, principal: Principal, exp: Any, keyset: _KeySet) -> None:
        """Only after a full verification; never past ``exp`` (the leeway is not extended)."""
        if self._cache_size == 0 or isinstance(exp, bool) or not isinstance(exp, int | float):
            return
        if exp <= self._clock():
            return  # accepted within the leeway: fine once, not worth remembering
        verified = self._verified
        while len(verified) >= self._cache_size:
            try:
                verified.pop(next(iter(verified)))
            except (StopIteration, KeyError, RuntimeError):  # emptied/changed by another thread
                break
        verified[token] = (principal, float(exp), keyset)

    def _key_for(self, kid: str, alg: str) -> tuple[jwt.PyJWK, _KeySet]:
        """The JWKS key for ``kid`` bound to ``alg`` (and the key set it came from),
        refreshing once from the provider."""
        keyset = self._keyset
        if keyset is None or kid not in keyset.jwks or self._stale():
            if self._provider is not None:
                keyset = self._refresh()
            elif keyset is None:  # pragma: no cover - static JWKS is indexed in __init__
                keyset = _KeySet({})
        return keyset.key_for(kid, alg), keyset

    def _refresh(self) -> _KeySet:
        """Fetch the JWKS from the provider again and replace the cached key set."""
        assert self._provider is not None
        with self._lock:
            keyset = _KeySet(_index_jwks(self._provider()))
            self._keyset = keyset
            self._loaded_at = time.monotonic()
        return keyset

    def _stale(self) -> bool:
        return (self._max_age is not None
                and time.monotonic() - self._loaded_at >= self._max_age)

    @staticmethod
    def _principal(claims: dict[str, Any]) -> Principal:
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise InvalidToken("invalid_claim", "sub must be a non-empty string")
        tenant_id = claims.get("tenant_id")
        if not isinstance(tenant_id, str) or not tenant_id:
            raise InvalidToken("invalid_claim", "tenant_id must be a non-empty string")
        follower_id = claims.get("follower_id")
        if follower_id is not None and (not isinstance(follower_id, str) or not follower_id):
            raise InvalidToken("invalid_claim", "follower_id must be a non-empty string")
        roles = _string_set(claims.get("roles", []), "roles")
        vault_ids = claims.get("vault_ids")
        return Principal(
            subject=sub,
            tenant_id=tenant_id,
            scopes=effective_scopes(_scopes(claims), roles),
            roles=roles,
            follower_id=follower_id,
            vault_ids=None if vault_ids is None else _string_set(vault_ids, "vault_ids"),
        )


def _check_numeric_dates(claims: Mapping[str, Any]) -> None:
    """RFC 7519 NumericDate: a JSON number. PyJWT only calls int() on these claims, so a
    string such as "9999999999" (or true) would pass; they are refused here."""
    for name in _NUMERIC_DATE_CLAIMS:
        if name not in claims:
            continue
        value = claims[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value):
            raise InvalidToken("invalid_claim", f"{name} must be a JSON number (NumericDate)")


def _string_set(value: Any, name: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidToken("invalid_claim", f"{name} must be a list of strings")
    return frozenset(v for v in value if v)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """Scopes from ``scope`` (space-separated string) and/or ``scp`` (list of strings)."""
    scopes: set[str] = set()
    if "scope" in claims:
        scope = claims["scope"]
        if not isinstance(scope, str):
            raise InvalidToken("invalid_claim", "scope must be a space-separated string")
        scopes.update(scope.split())
    if "scp" in claims:
        scp = claims["scp"]
        if isinstance(scp, str):  # some providers emit a single string here
            scopes.update(scp.split())
        else:
            scopes.update(_string_set(scp, "scp"))
    return frozenset(scopes)
