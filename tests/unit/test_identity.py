"""Dev issuer + JWKS-only token verifier: round trip, key persistence and refusals."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import stat
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from tests.unit.dev_issuers import AUD, ISS
from vanta.adapters.identity.dev_issuer import DevIssuer, jwk_thumbprint
from vanta.adapters.identity.verifier import InvalidToken, TokenVerifier
from vanta.application.principal import ALL_SCOPES, Principal

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")


# -- helpers -----------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _private_key(issuer: DevIssuer) -> Any:
    return serialization.load_pem_private_key(issuer.key_path.read_bytes(), password=None)


def _sign(issuer: DevIssuer, claims: dict[str, Any]) -> str:
    """A correctly signed RS256 token with arbitrary claims (for missing-claim cases)."""
    return jwt.encode(claims, _private_key(issuer), algorithm="RS256",
                      headers={"kid": issuer.kid})


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"iss": ISS, "aud": AUD, "sub": "user-1", "iat": now, "nbf": now,
                              "exp": now + 600, "tenant_id": "tnt_a", "scope": "orders:read"}
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as exc:
        verifier.verify(token)
    return exc.value.reason


@pytest.fixture()
def verifier(issuer: DevIssuer) -> TokenVerifier:
    return TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, leeway=30)


# -- principal ---------------------------------------------------------------------------------


def test_principal_has_scope() -> None:
    p = Principal("u", "t", frozenset({"orders:read"}))
    assert p.has_scope("orders:read")
    assert not p.has_scope("orders")
    assert p.roles == frozenset()
    assert p.follower_id is None
    assert len(ALL_SCOPES) == len(set(ALL_SCOPES)) == 8


# -- issuer ------------------------------------------------------------------------------------


def test_round_trip(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("user-1", "tnt_a", ["orders:read", "audit:read", "orders:read"],
                         roles=["owner"], follower_id="flw_1")
    p = verifier.verify(token)
    assert p == Principal(subject="user-1", tenant_id="tnt_a",
                          scopes=frozenset({"orders:read", "audit:read"}),
                          roles=frozenset({"owner"}), follower_id="flw_1")
    assert p.has_scope("audit:read")
    assert not p.has_scope("billing:read")


def test_token_shape(issuer: DevIssuer) -> None:
    token = issuer.issue("user-1", "tnt_a", ALL_SCOPES, ttl_seconds=120, now=1_700_000_000)
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == issuer.kid
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == ISS
    assert claims["aud"] == AUD
    assert claims["sub"] == "user-1"
    assert claims["tenant_id"] == "tnt_a"
    assert claims["iat"] == claims["nbf"] == 1_700_000_000
    assert claims["exp"] == 1_700_000_120
    assert claims["scope"] == " ".join(sorted(ALL_SCOPES))
    assert claims["roles"] == []
    assert "follower_id" not in claims
    assert isinstance(claims["jti"], str) and claims["jti"]
    other = jwt.decode(issuer.issue("user-1", "tnt_a", ALL_SCOPES, now=1_700_000_000),
                       options={"verify_signature": False})
    assert other["jti"] != claims["jti"]


def test_jwks_shape(issuer: DevIssuer) -> None:
    jwks = issuer.jwks()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert set(key) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")
    assert key["kid"] == issuer.kid == jwk_thumbprint(key)
    assert len(_b64url_decode(key["n"])) == 256  # RSA-2048
    jwks["keys"].clear()  # callers get a copy
    assert issuer.jwks()["keys"]


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 §3.1 example key and its published thumbprint.
    n = ("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_"
         "BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0"
         "_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWh"
         "AI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
    assert (jwk_thumbprint({"kty": "RSA", "n": n, "e": "AQAB", "alg": "RS256", "kid": "x"})
            == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs")


def test_key_persisted_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "keys" / "dev.pem"
    first = DevIssuer(path, issuer=ISS, audience=AUD)
    assert path.is_file()
    pem = path.read_bytes()
    second = DevIssuer(path, issuer=ISS, audience=AUD)
    assert second.kid == first.kid
    assert second.jwks() == first.jwks()
    assert path.read_bytes() == pem
    verifier = TokenVerifier(second.jwks(), issuer=ISS, audience=AUD)
    assert verifier.verify(first.issue("u", "t", ["orders:read"])).tenant_id == "t"
    assert [p.name for p in path.parent.iterdir()] == ["dev.pem"]  # no temp files left


@posix_only
def test_key_file_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "dev.pem"
    DevIssuer(path, issuer=ISS, audience=AUD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_concurrent_creation_converges_on_one_key(tmp_path: Path) -> None:
    path = tmp_path / "race" / "dev.pem"
    with ThreadPoolExecutor(max_workers=6) as pool:
        kids = set(pool.map(lambda _: DevIssuer(path, issuer=ISS, audience=AUD).kid, range(6)))
    assert len(kids) == 1
    assert DevIssuer(path, issuer=ISS, audience=AUD).kid in kids
    assert [p.name for p in path.parent.iterdir()] == ["dev.pem"]


def test_issue_rejects_bad_input(issuer: DevIssuer) -> None:
    with pytest.raises(ValueError):
        issuer.issue("u", "t", ["has space"])
    with pytest.raises(ValueError):
        issuer.issue("u", "t", ["orders:read"], ttl_seconds=0)
    with pytest.raises(TypeError):
        issuer.issue("u", "t", "orders:read")
    with pytest.raises(ValueError):
        issuer.issue("u", "", ["orders:read"])


# -- verifier refusals -------------------------------------------------------------------------


def test_rejects_alg_none(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), None, algorithm="none", headers={"kid": issuer.kid})
    assert jwt.get_unverified_header(token)["alg"] == "none"
    assert _reason(verifier, token) == "unsupported_alg"


def test_rejects_hs256_signed_with_public_key(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    # Classic key-confusion attack: HMAC keyed with the (public) RSA key. PyJWT refuses to
    # produce this token, so it is assembled by hand.
    public_pem = _private_key(issuer).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": issuer.kid}).encode())
    payload = _b64url(json.dumps(_claims()).encode())
    signing_input = f"{header}.{payload}".encode()
    sig = _b64url(hmac.new(public_pem, signing_input, hashlib.sha256).digest())
    assert _reason(verifier, f"{header}.{payload}.{sig}") == "unsupported_alg"


def test_rejects_expired(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("u", "t", ["orders:read"], ttl_seconds=60, now=int(time.time()) - 600)
    assert _reason(verifier, token) == "expired"


def test_expiry_within_leeway_is_accepted(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("u", "t", ["orders:read"], ttl_seconds=60, now=int(time.time()) - 70)
    assert verifier.verify(token).subject == "u"


def test_rejects_not_yet_valid(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("u", "t", ["orders:read"], now=int(time.time()) + 120)
    assert _reason(verifier, token) == "not_yet_valid"
    # nbf alone in the future (iat now) is refused too.
    now = int(time.time())
    assert _reason(verifier, _sign(issuer, _claims(iat=now, nbf=now + 120))) == "not_yet_valid"


def test_not_yet_valid_within_leeway_is_accepted(
        issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("u", "t", ["orders:read"], now=int(time.time()) + 10)
    assert verifier.verify(token).subject == "u"


def test_rejects_wrong_issuer(tmp_path: Path, issuer: DevIssuer) -> None:
    evil = DevIssuer(issuer.key_path, issuer="https://evil.example", audience=AUD)
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD)
    assert _reason(verifier, evil.issue("u", "t", ["orders:read"])) == "bad_issuer"


def test_rejects_wrong_audience(issuer: DevIssuer) -> None:
    other_aud = DevIssuer(issuer.key_path, issuer=ISS, audience="someone-else")
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD)
    assert _reason(verifier, other_aud.issue("u", "t", ["orders:read"])) == "bad_audience"


def test_rejects_unknown_kid(other_issuer: DevIssuer, verifier: TokenVerifier) -> None:
    assert _reason(verifier, other_issuer.issue("u", "t", ["orders:read"])) == "unknown_kid"


def test_rejects_missing_kid(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), _private_key(issuer), algorithm="RS256")
    assert _reason(verifier, token) == "unknown_kid"


def test_rejects_tampered_payload(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = issuer.issue("u", "tnt_a", ["orders:read"])
    header, payload, sig = token.split(".")
    claims = json.loads(_b64url_decode(payload))
    claims["tenant_id"] = "tnt_b"
    forged = f"{header}.{_b64url(json.dumps(claims).encode())}.{sig}"
    assert _reason(verifier, forged) == "bad_signature"


def test_rejects_missing_tenant_id(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = _sign(issuer, _claims(tenant_id=None))
    assert _reason(verifier, token) == "missing_claim"


def test_rejects_missing_sub(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    assert _reason(verifier, _sign(issuer, _claims(sub=None))) == "missing_claim"


@pytest.mark.parametrize("garbage", ["", "garbage", "a.b.c", "not.a.jwt.at.all", "....",
                                     "eyJhbGciOiJSUzI1NiJ9.%%%.abc"])
def test_rejects_garbage(verifier: TokenVerifier, garbage: str) -> None:
    assert _reason(verifier, garbage) == "malformed"


def test_rejects_ps256_for_key_declared_rs256(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = jwt.encode(_claims(), _private_key(issuer), algorithm="PS256",
                       headers={"kid": issuer.kid})
    assert _reason(verifier, token) == "bad_key"


def test_scp_list_claim(issuer: DevIssuer, verifier: TokenVerifier) -> None:
    token = _sign(issuer, _claims(scope=None, scp=["orders:read", "vault:read"], roles=["ops"]))
    p = verifier.verify(token)
    assert p.scopes == frozenset({"orders:read", "vault:read"})
    assert p.roles == frozenset({"ops"})


def test_es256_key_from_static_jwks() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "ec-1"}
    verifier = TokenVerifier({"keys": [jwk]}, issuer=ISS, audience=AUD)
    token = jwt.encode(_claims(), key, algorithm="ES256", headers={"kid": "ec-1"})
    assert verifier.verify(token).tenant_id == "tnt_a"
    # Relabel the ES256 token as RS256: the EC key cannot serve RS256.
    _, payload, sig = token.split(".")
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": "ec-1"}).encode())
    assert _reason(verifier, f"{header}.{payload}.{sig}") == "bad_key"


@pytest.mark.parametrize("algs", [("HS256",), ("RS256", "none"), ()])
def test_constructor_refuses_symmetric_or_empty_algorithms(
        issuer: DevIssuer, algs: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, algorithms=algs)


# -- rotation ----------------------------------------------------------------------------------


def test_callable_jwks_refreshes_on_unknown_kid(
        issuer: DevIssuer, other_issuer: DevIssuer) -> None:
    current = {"jwks": issuer.jwks()}
    calls: list[int] = []

    def provider() -> dict[str, Any]:
        calls.append(1)
        return current["jwks"]

    verifier = TokenVerifier(provider, issuer=ISS, audience=AUD)
    old_token = issuer.issue("u", "t", ["orders:read"])
    assert verifier.verify(old_token).subject == "u"
    assert verifier.verify(old_token).subject == "u"
    assert len(calls) == 1  # cached while the kid is known

    current["jwks"] = other_issuer.jwks()  # the provider rotated its key
    new_token = other_issuer.issue("u2", "t", ["orders:read"])
    assert verifier.verify(new_token).subject == "u2"
    assert len(calls) == 2

    # The retired key is gone after rotation: refreshed once more, still unknown.
    assert _reason(verifier, old_token) == "unknown_kid"
    assert len(calls) == 3


def test_static_jwks_never_refreshes(issuer: DevIssuer, other_issuer: DevIssuer) -> None:
    jwks = issuer.jwks()
    verifier = TokenVerifier(jwks, issuer=ISS, audience=AUD)
    jwks["keys"] = other_issuer.jwks()["keys"]  # mutating the dict afterwards changes nothing
    assert _reason(verifier, other_issuer.issue("u", "t", ["orders:read"])) == "unknown_kid"
    assert verifier.verify(issuer.issue("u", "t", ["orders:read"])).subject == "u"
