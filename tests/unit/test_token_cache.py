"""The verifier remembers fully verified tokens until ``exp``, never longer, and forgets them
when its key set changes."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from tests.unit.dev_issuers import AUD, ISS
from vanta.adapters.identity.dev_issuer import DevIssuer
from vanta.adapters.identity.verifier import InvalidToken, TokenVerifier


def _sign(issuer: DevIssuer, **claims: Any) -> str:
    key = serialization.load_pem_private_key(Path(issuer.key_path).read_bytes(), password=None)
    now = int(time.time())
    body = {"iss": ISS, "aud": AUD, "sub": "u", "tenant_id": "t", "iat": now,
            "exp": now + 600, "scope": "vault:read", **claims}
    return jwt.encode(body, key, algorithm="RS256",  # type: ignore[arg-type]
                      headers={"kid": issuer.kid})


def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as exc:
        verifier.verify(token)
    return exc.value.reason


def test_a_verified_token_is_not_decoded_again(issuer: DevIssuer,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD)
    token = issuer.issue("u", "t", ["vault:read"])
    first = verifier.verify(token)
    calls: list[str] = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append("decode") or real(*a, **k))
    assert verifier.verify(token) is first
    assert calls == []


def test_a_cached_token_is_refused_once_it_expires(issuer: DevIssuer) -> None:
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, leeway=0)
    exp = int(time.time()) + 2
    token = _sign(issuer, exp=exp)
    assert verifier.verify(token).subject == "u"
    assert verifier.verify(token).subject == "u"  # from the cache
    while time.time() <= exp + 0.05:
        time.sleep(0.1)
    assert _reason(verifier, token) == "expired"


def test_the_cache_never_outlives_exp_even_inside_the_leeway(
        issuer: DevIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, clock=lambda: now[0])
    token = _sign(issuer)
    exp = jwt.decode(token, options={"verify_signature": False})["exp"]
    verifier.verify(token)
    assert verifier._verified[token][1] == exp
    decoded: list[int] = []
    real = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: decoded.append(1) or real(*a, **k))
    now[0] = exp + 1.0  # past exp (inside the 30 s leeway): the full check decides again
    assert verifier.verify(token).subject == "u"
    assert decoded == [1]
    assert token not in verifier._verified  # and it is not remembered past exp


def test_invalid_tokens_are_never_cached(issuer: DevIssuer) -> None:
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD)
    header, _, sig = _sign(issuer).split(".")
    claims = _sign(issuer, sub="admin").split(".")[1]
    forged = f"{header}.{claims}.{sig}"  # another payload under a valid signature
    for _ in range(2):
        assert _reason(verifier, forged) == "bad_signature"
    assert verifier._verified == {}


def test_a_key_set_refresh_forgets_remembered_tokens(issuer: DevIssuer,
                                                     other_issuer: DevIssuer) -> None:
    current = {"jwks": issuer.jwks()}
    verifier = TokenVerifier(lambda: current["jwks"], issuer=ISS, audience=AUD,
                             jwks_max_age=0.05)
    token = issuer.issue("u", "t", ["vault:read"])
    assert verifier.verify(token).subject == "u"
    current["jwks"] = other_issuer.jwks()  # the provider retired the key
    time.sleep(0.06)  # the key set is due for a refresh: the cached answer is not trusted
    assert _reason(verifier, token) == "unknown_kid"


def test_the_cache_is_bounded(issuer: DevIssuer) -> None:
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, cache_size=3)
    tokens = [issuer.issue(f"u{i}", "t", ["vault:read"]) for i in range(5)]
    for t in tokens:
        verifier.verify(t)
    assert list(verifier._verified) == tokens[2:]  # the oldest went first
    assert [verifier.verify(t).subject for t in tokens] == [f"u{i}" for i in range(5)]


def test_cache_size_zero_disables_it(issuer: DevIssuer) -> None:
    verifier = TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, cache_size=0)
    verifier.verify(issuer.issue("u", "t", ["vault:read"]))
    assert verifier._verified == {}
    with pytest.raises(ValueError):
        TokenVerifier(issuer.jwks(), issuer=ISS, audience=AUD, cache_size=-1)
