"""OidcProvider, TokenVerifier and token exchange against a real OIDC provider process.

The provider is the npm package ``oauth2-mock-server`` driven by ``oidc_mock/server.js`` on
127.0.0.1 (see that file for the claims it adds and its control endpoint). Without node/npm,
or when ``npm ci`` fails, the tests are skipped with the reason; with ``CI=true`` they fail.
The last two tests need no process: an in-memory transport makes the network slow or odd.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from vanta.adapters.identity.oidc import OidcError, OidcProvider
from vanta.adapters.identity.token_exchange import (
    TokenExchangeError,
    client_credentials,
    exchange_code,
)
from vanta.adapters.identity.verifier import InvalidToken, TokenVerifier
from vanta.application.principal import Principal

MOCK_DIR = Path(__file__).parent / "oidc_mock"
MIN_NODE = (20, 19)
AUD = "vanta-api"
TENANT = "tnt_oidc"
CLIENT_ID = "svc-reporting"
CLIENT_SECRET = "s3cret+with/odd: chars"  # exercises the form-encoding of client_secret_basic
REDIRECT_URI = "http://127.0.0.1:9/callback"  # never contacted: the redirect is not followed


# -- the mock provider process -----------------------------------------------------------------


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"OIDC mock provider unavailable: {reason} (CI=true: it is required)")
    pytest.skip(f"OIDC mock provider unavailable: {reason}")


@pytest.fixture(scope="module")
def node() -> str:
    """Path of ``node``, with oauth2-mock-server installed into oidc_mock/node_modules."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _unavailable("`node` and `npm` (Node.js >= 20.19) must be on PATH")
    assert node is not None and npm is not None
    version = subprocess.run([node, "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    m = re.match(r"v(\d+)\.(\d+)", version)
    if m is None or (int(m[1]), int(m[2])) < MIN_NODE:
        _unavailable(f"Node.js {version or '?'} is too old; oauth2-mock-server 8 needs >= 20.19")
    entry = MOCK_DIR / "node_modules" / "oauth2-mock-server" / "dist" / "index.mjs"
    for _ in range(2):  # a second try after an interrupted or partial install
        if entry.is_file():
            break
        shutil.rmtree(MOCK_DIR / "node_modules", ignore_errors=True)
        # npm ci installs exactly the committed lockfile and never rewrites it. Short retry
        # backoff: offline, npm's defaults take over a minute to give up.
        verb = "ci" if (MOCK_DIR / "package-lock.json").is_file() else "install"
        cmd = [npm, verb, "--no-audit", "--no-fund", "--fetch-retries=2",
               "--fetch-retry-mintimeout=1000", "--fetch-retry-maxtimeout=5000"]
        try:
            done = subprocess.run(cmd, cwd=MOCK_DIR, capture_output=True, text=True,
                                  timeout=300, check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            _unavailable(f"`npm {verb}` in {MOCK_DIR} failed: {e}")
        else:
            if done.returncode != 0:
                lines = [ln for ln in (done.stderr + done.stdout).splitlines()
                         if ln.strip() and not ln.startswith("npm warn")]
                _unavailable(f"`npm {verb}` in {MOCK_DIR} exited {done.returncode}: "
                             + " | ".join(lines[:4]))
    if not entry.is_file():
        _unavailable(f"oauth2-mock-server is incomplete after `npm ci` ({entry} missing)")
    return node


@dataclass(frozen=True)
class MockOidc:
    issuer: str
    control: str
    kid: str  # the first signing key


@contextmanager
def _run_mock(node: str, log: Path, *, tenant: str = TENANT) -> Iterator[MockOidc]:
    with log.open("w") as err:
        proc = subprocess.Popen(
            [node, "server.js", "--audience", AUD, "--tenant", tenant,
             "--client", f"{CLIENT_ID}:{CLIENT_SECRET}"],
            cwd=MOCK_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(15)
        if not line or not line[0].strip():
            raise RuntimeError(f"oidc_mock/server.js did not start (exit {proc.poll()}):\n"
                               + log.read_text()[-2000:])
        info = json.loads(line[0])
        assert info["issuer"].startswith("http://127.0.0.1:")
        yield MockOidc(info["issuer"], info["control"], info["kid"])
    finally:
        if proc.stdin is not None:
            proc.stdin.close()  # server.js exits when its stdin closes
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def mock_a(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockOidc]:
    with _run_mock(node, tmp_path_factory.mktemp("oidc") / "a.log") as mock:
        yield mock


@pytest.fixture(scope="module")
def mock_b(node: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MockOidc]:
    """A second, unrelated provider (its own keys and issuer)."""
    with _run_mock(node, tmp_path_factory.mktemp("oidc") / "b.log") as mock:
        yield mock


# -- clients and helpers -----------------------------------------------------------------------


@pytest.fixture
def hits() -> Counter[str]:
    """Requests per URL path made through the ``http`` fixture."""
    return Counter()


@pytest.fixture
async def http(hits: Counter[str]) -> AsyncIterator[httpx.AsyncClient]:
    async def count(request: httpx.Request) -> None:
        hits[request.url.path] += 1

    async with httpx.AsyncClient(trust_env=False, timeout=5,
                                 event_hooks={"request": [count]}) as client:
        yield client


@pytest.fixture
async def provider(mock_a: MockOidc, http: httpx.AsyncClient) -> AsyncIterator[OidcProvider]:
    async with OidcProvider(mock_a.issuer, http=http) as p:
        await p.start()
        yield p


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(part: str) -> dict[str, Any]:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def _basic() -> str:
    raw = f"{quote_plus(CLIENT_ID)}:{quote_plus(CLIENT_SECRET)}".encode()
    return "Basic " + base64.b64encode(raw).decode()


async def _mock_token(http: httpx.AsyncClient, mock: MockOidc, *, scope: str = "orders:read",
                      claims: dict[str, Any] | None = None,
                      header: dict[str, Any] | None = None) -> str:
    """A client-credentials access token straight from the mock, with test-only overrides."""
    form = {"grant_type": "client_credentials", "scope": scope}
    if claims:
        form["mock_claims"] = json.dumps(claims)
    if header:
        form["mock_header"] = json.dumps(header)
    r = await http.post(f"{mock.issuer}/token", data=form, headers={"Authorization": _basic()})
    assert r.status_code == 200, r.text
    return r.json()["access_token"]


def _reason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as exc:
        verifier.verify(token)
    return exc.value.reason


async def _areason(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as exc:
        await verifier.averify(token)
    return exc.value.reason


def _kids(jwks: dict[str, Any]) -> list[str]:
    return [k["kid"] for k in jwks["keys"]]


# -- discovery, tokens, grants -----------------------------------------------------------------


async def test_discovery_keys_and_algorithms(
        provider: OidcProvider, mock_a: MockOidc, hits: Counter[str]) -> None:
    assert provider.metadata is not None and provider.metadata["issuer"] == mock_a.issuer
    assert provider.advertised_algorithms() == ("RS256",)
    assert _kids(provider.jwks()) == [mock_a.kid]
    assert await provider.endpoint("token_endpoint") == f"{mock_a.issuer}/token"
    assert hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}
    jwks = provider.jwks()
    jwks["keys"].clear()  # callers get a copy
    assert provider.jwks()["keys"]


async def test_client_credentials_token_verifies(
        provider: OidcProvider, mock_a: MockOidc) -> None:
    resp = await client_credentials(provider, CLIENT_ID, CLIENT_SECRET,
                                    ["orders:read", "vault:read"])
    assert resp["token_type"] == "Bearer" and resp["expires_in"] == 3600
    token = resp["access_token"]
    assert jwt.get_unverified_header(token)["kid"] == mock_a.kid
    verifier = provider.token_verifier(AUD)
    assert verifier.algorithms == ("RS256",)
    expected = Principal(subject=CLIENT_ID, tenant_id=TENANT,
                         scopes=frozenset({"orders:read", "vault:read"}))
    assert verifier.verify(token) == expected
    assert await verifier.averify(token) == expected
    # A plain TokenVerifier over the same callable agrees.
    plain = TokenVerifier(provider.jwks, issuer=provider.issuer, audience=AUD,
                          algorithms=provider.advertised_algorithms())
    assert plain.verify(token).tenant_id == TENANT


async def test_authorization_code_with_pkce(
        provider: OidcProvider, http: httpx.AsyncClient) -> None:
    code_verifier = secrets.token_urlsafe(48)
    challenge = _b64url(hashlib.sha256(code_verifier.encode()).digest())
    state = secrets.token_urlsafe(16)
    authorize = await provider.endpoint("authorization_endpoint")
    r = await http.get(authorize, params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
        "scope": "openid orders:read", "state": state, "login_hint": "alice@example.com",
        "code_challenge": challenge, "code_challenge_method": "S256"})
    assert r.status_code == 302
    location = urlsplit(r.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT_URI
    query = parse_qs(location.query)
    assert query["state"] == [state]
    code = query["code"][0]

    resp = await exchange_code(provider, CLIENT_ID, CLIENT_SECRET, code, REDIRECT_URI,
                               code_verifier=code_verifier)
    assert resp["token_type"] == "Bearer"
    assert resp["scope"] == "openid orders:read"
    assert jwt.decode(resp["id_token"], options={"verify_signature": False})["aud"] == CLIENT_ID
    principal = provider.token_verifier(AUD).verify(resp["access_token"])
    assert principal == Principal(subject="alice@example.com", tenant_id=TENANT,
                                  scopes=frozenset({"openid", "orders:read"}))

    # A code is redeemed once.
    with pytest.raises(TokenExchangeError) as exc:
        await exchange_code(provider, CLIENT_ID, CLIENT_SECRET, code, REDIRECT_URI)
    assert (exc.value.code, exc.value.status) == ("invalid_grant", 400)


async def test_token_endpoint_errors(
        provider: OidcProvider, http: httpx.AsyncClient, mock_a: MockOidc) -> None:
    with pytest.raises(TokenExchangeError) as exc:
        await client_credentials(provider, CLIENT_ID, "wrong", "orders:read")
    assert (exc.value.code, exc.value.status) == ("invalid_client", 401)
    assert "wrong" not in str(exc.value) and CLIENT_SECRET not in str(exc.value)

    # PKCE: a verifier that does not match the challenge is refused by the provider.
    challenge = _b64url(hashlib.sha256(b"x" * 43).digest())
    r = await http.get(f"{mock_a.issuer}/authorize", params={
        "response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT_URI,
        "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    with pytest.raises(TokenExchangeError) as exc:
        await exchange_code(provider, CLIENT_ID, CLIENT_SECRET, code, REDIRECT_URI,
                            code_verifier="y" * 43)
    assert exc.value.code == "invalid_request"
    assert "code_verifier" in exc.value.description

    async with OidcProvider("http://127.0.0.1:1", http=http, timeout=1) as dead:
        with pytest.raises(TokenExchangeError) as exc:
            await client_credentials(dead, CLIENT_ID, CLIENT_SECRET, None)
    assert exc.value.code == "discovery_failed"


async def test_issuer_must_match_discovery(mock_a: MockOidc, http: httpx.AsyncClient) -> None:
    async with OidcProvider(mock_a.issuer + "/", http=http) as p:
        with pytest.raises(OidcError, match="does not match"):
            await p.start()
        with pytest.raises(OidcError):
            p.advertised_algorithms()
        assert p.jwks_snapshot() == {"keys": []}


# -- attacks -----------------------------------------------------------------------------------


@dataclass
class Ctx:
    http: httpx.AsyncClient
    a: MockOidc
    b: MockOidc
    provider: OidcProvider

    async def token(self, **kw: Any) -> str:
        return await _mock_token(self.http, self.a, **kw)


async def _alg_none(c: Ctx) -> str:
    _, payload, _ = (await c.token()).split(".")
    header = _b64url(json.dumps({"alg": "none", "typ": "JWT", "kid": c.a.kid}).encode())
    return f"{header}.{payload}."


async def _hs256_with_public_key(c: Ctx) -> str:
    (jwk,) = c.provider.jwks_snapshot()["keys"]
    pem = RSAAlgorithm.from_jwk(jwk).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    _, payload, _ = (await c.token()).split(".")
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT", "kid": c.a.kid}).encode())
    sig = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(sig)}"


async def _tampered(c: Ctx) -> str:
    header, payload, sig = (await c.token()).split(".")
    claims = _b64url_json(payload) | {"tenant_id": "tnt_victim"}
    return f"{header}.{_b64url(json.dumps(claims).encode())}.{sig}"


async def _other_provider(c: Ctx) -> str:
    return await _mock_token(c.http, c.b)


async def _other_provider_claiming_our_issuer(c: Ctx) -> str:
    return await _mock_token(c.http, c.b, claims={"iss": c.a.issuer})


async def _other_provider_with_our_kid(c: Ctx) -> str:
    return await _mock_token(c.http, c.b, claims={"iss": c.a.issuer},
                             header={"kid": c.a.kid})


def _claims(**claims: Any) -> Callable[[Ctx], Any]:
    async def build(c: Ctx) -> str:
        now = int(time.time())
        return await c.token(claims={k: v(now) if callable(v) else v
                                     for k, v in claims.items()})
    return build


ATTACKS: dict[str, tuple[Callable[[Ctx], Any], str]] = {
    "alg_none": (_alg_none, "unsupported_alg"),
    "hs256_signed_with_public_key": (_hs256_with_public_key, "unsupported_alg"),
    "expired": (_claims(iat=lambda n: n - 900, nbf=lambda n: n - 900,
                        exp=lambda n: n - 300), "expired"),
    "not_yet_valid": (_claims(iat=lambda n: n, nbf=lambda n: n + 300), "not_yet_valid"),
    "wrong_issuer": (_claims(iss="http://127.0.0.1:1"), "bad_issuer"),
    "wrong_audience": (_claims(aud="someone-else"), "bad_audience"),
    "missing_tenant": (_claims(tenant_id=None), "missing_claim"),
    "unknown_kid": (lambda c: c.token(header={"kid": "no-such-key"}), "unknown_kid"),
    "tampered_payload": (_tampered, "bad_signature"),
    "other_provider": (_other_provider, "unknown_kid"),
    "other_provider_claiming_our_issuer": (_other_provider_claiming_our_issuer, "unknown_kid"),
    "other_provider_with_our_kid": (_other_provider_with_our_kid, "bad_signature"),
}


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_attacks_are_refused(
        attack: str, provider: OidcProvider, http: httpx.AsyncClient, hits: Counter[str],
        mock_a: MockOidc, mock_b: MockOidc) -> None:
    build, reason = ATTACKS[attack]
    token = await build(Ctx(http, mock_a, mock_b, provider))
    verifier = provider.token_verifier(AUD)
    assert _reason(verifier, token) == reason
    assert await _areason(verifier, token) == reason
    # Within min_refresh_interval of start() nothing made us fetch the keys again.
    assert hits["/jwks"] == 1


async def test_random_kids_cannot_hammer_the_provider(
        mock_a: MockOidc, http: httpx.AsyncClient, hits: Counter[str]) -> None:
    async with OidcProvider(mock_a.issuer, http=http, min_refresh_interval=0.3) as p:
        await p.start()
        verifier = p.token_verifier(AUD)
        tokens = [await _mock_token(http, mock_a, header={"kid": secrets.token_hex(8)})
                  for _ in range(5)]
        await asyncio.sleep(0.35)
        for _ in range(4):  # 4 x 5 concurrent unknown kids: one shared fetch, then none
            results = await asyncio.gather(*(verifier.averify(t) for t in tokens),
                                           return_exceptions=True)
            assert all(isinstance(r, InvalidToken) and r.reason == "unknown_kid"
                       for r in results)
            for t in tokens:
                assert _reason(verifier, t) == "unknown_kid"
        assert hits["/jwks"] == 2


# -- key rotation ------------------------------------------------------------------------------


async def _token_with_kid(http: httpx.AsyncClient, mock: MockOidc, kid: str) -> str:
    # oauth2-mock-server picks signing keys round-robin: ask until the new key signs.
    for _ in range(5):
        token = await _mock_token(http, mock)
        if jwt.get_unverified_header(token)["kid"] == kid:
            return token
    raise AssertionError(f"the mock never signed with {kid}")


async def test_key_rotation(node: str, tmp_path: Path, http: httpx.AsyncClient,
                            hits: Counter[str]) -> None:
    with _run_mock(node, tmp_path / "rot.log") as mock:
        async with OidcProvider(mock.issuer, http=http, min_refresh_interval=0.2) as p:
            await p.start()
            verifier = p.token_verifier(AUD)
            es_verifier = p.token_verifier(AUD, algorithms=("RS256", "ES256"))
            old_token = await _mock_token(http, mock)
            assert verifier.verify(old_token).subject == CLIENT_ID
            assert es_verifier.verify(old_token).subject == CLIENT_ID

            # 1. Sync verify: refused at once, the refresh runs in the background.
            kid2 = (await http.post(f"{mock.control}/rotate", json={})).json()["kid"]
            token2 = await _token_with_kid(http, mock, kid2)
            await asyncio.sleep(0.25)
            started = time.monotonic()
            assert _reason(verifier, token2) == "unknown_kid"
            assert time.monotonic() - started < 0.1  # did not wait for the network
            for _ in range(200):
                if kid2 in _kids(p.jwks_snapshot()):
                    break
                await asyncio.sleep(0.01)
            assert set(_kids(p.jwks_snapshot())) == {mock.kid, kid2}
            assert verifier.verify(token2).subject == CLIENT_ID

            # 2. Async verify: the same token is re-checked after the fetch it triggered.
            kid3 = (await http.post(f"{mock.control}/rotate", json={"alg": "ES256"})).json()[
                "kid"]
            token3 = await _token_with_kid(http, mock, kid3)
            await asyncio.sleep(0.25)
            before = hits["/jwks"]
            assert (await es_verifier.averify(token3)).tenant_id == TENANT
            assert hits["/jwks"] == before + 1
            assert jwt.get_unverified_header(token3)["alg"] == "ES256"
            # The advertised list still says RS256 only, so the default verifier refuses ES256.
            assert await _areason(verifier, token3) == "unsupported_alg"

            # Keys still published keep working during the overlap.
            assert verifier.verify(old_token).subject == CLIENT_ID


# -- no network: a slow provider, a retired key, insecure metadata ----------------------------


class FakeIdp:
    """An in-memory OIDC provider behind httpx.MockTransport; JWKS answers can be held."""

    issuer = "https://idp.example"

    def __init__(self) -> None:
        self.keys: dict[str, ec.EllipticCurvePrivateKey] = {}
        self.published: list[str] = []
        self.meta: dict[str, Any] = {
            "issuer": self.issuer, "jwks_uri": f"{self.issuer}/keys",
            "token_endpoint": f"{self.issuer}/token",
            "id_token_signing_alg_values_supported": ["none", "HS256", "ES256", "RS256"]}
        self.gate = asyncio.Event()
        self.gate.set()
        self.jwks_requests = 0

    def add_key(self, kid: str) -> None:
        self.keys[kid] = ec.generate_private_key(ec.SECP256R1())
        self.published.append(kid)

    def token(self, kid: str) -> str:
        now = int(time.time())
        return jwt.encode({"iss": self.issuer, "aud": AUD, "sub": "u", "tenant_id": "t",
                           "iat": now, "exp": now + 600}, self.keys[kid], algorithm="ES256",
                          headers={"kid": kid})

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.meta)
        if request.url.path == "/keys":
            self.jwks_requests += 1
            await self.gate.wait()
            return httpx.Response(200, json={"keys": [
                ECAlgorithm.to_jwk(self.keys[k].public_key(), as_dict=True) | {"kid": k}
                for k in self.published]})
        return httpx.Response(404)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle))


async def test_jwks_never_waits_for_a_slow_provider() -> None:
    idp = FakeIdp()
    idp.add_key("k1")
    async with idp.client() as client, OidcProvider(idp.issuer, http=client,
                                                    min_refresh_interval=0) as p:
        await p.start()
        assert p.advertised_algorithms() == ("ES256", "RS256")  # never none/HS*
        verifier = p.token_verifier(AUD)
        token1 = idp.token("k1")
        assert verifier.verify(token1).subject == "u"

        idp.add_key("k2")
        idp.gate.clear()  # the provider now hangs on JWKS requests
        token2 = idp.token("k2")
        started = time.monotonic()
        assert _kids(p.jwks()) == ["k1"]
        assert _reason(verifier, token2) == "unknown_kid"
        assert time.monotonic() - started < 0.1
        pending = asyncio.create_task(verifier.averify(token2))
        await asyncio.sleep(0.05)
        assert not pending.done()  # waiting for the fetch, while the loop keeps running
        assert idp.jwks_requests == 2  # one shared fetch for every caller
        idp.gate.set()
        assert (await asyncio.wait_for(pending, 2)).subject == "u"


async def test_retired_key_stops_being_trusted() -> None:
    idp = FakeIdp()
    idp.add_key("k1")
    async with idp.client() as client, OidcProvider(idp.issuer, http=client) as p:
        await p.start()
        verifier = TokenVerifier(p.jwks, issuer=p.issuer, audience=AUD, algorithms=["ES256"],
                                 jwks_max_age=0.1, on_unknown_kid=p.refresh_if_allowed)
        token1 = idp.token("k1")
        assert verifier.verify(token1).subject == "u"
        idp.add_key("k2")
        idp.published.remove("k1")
        await p.refresh()
        assert verifier.verify(token1).subject == "u"  # verifier cache still younger than 0.1s
        await asyncio.sleep(0.12)
        assert _reason(verifier, token1) == "unknown_kid"
        assert verifier.verify(idp.token("k2")).subject == "u"


async def test_insecure_or_odd_metadata_is_refused() -> None:
    with pytest.raises(ValueError, match="https"):
        OidcProvider("http://idp.example")
    with pytest.raises(ValueError):
        OidcProvider("https://idp.example?x=1")
    async with OidcProvider("http://127.0.0.1:1"):  # loopback may use plain http
        pass
    idp = FakeIdp()
    idp.add_key("k1")
    idp.meta["jwks_uri"] = "http://idp.example/keys"
    async with idp.client() as client, OidcProvider(idp.issuer, http=client) as p:
        with pytest.raises(OidcError, match=r"jwks_uri .* must use https"):
            await p.start()
        idp.meta["jwks_uri"] = f"{idp.issuer}/keys"
        idp.meta["id_token_signing_alg_values_supported"] = ["none", "HS256"]
        await p.refresh()  # metadata is cached only once accepted, so this re-discovers
        with pytest.raises(OidcError, match="no acceptable asymmetric"):
            p.advertised_algorithms()


async def test_api_trusts_the_provider_and_exchanges_tokens(
        mock_a: MockOidc, tmp_path: Path) -> None:
    """The whole API on an external provider: POST /v1/auth/token gets a token from it, and
    that token is accepted on a tenant route; a dev-issuer token is not."""
    from tests.http_helpers import UNLIMITED
    from vanta.bootstrap import build
    from vanta.config import Settings
    from vanta.entrypoints.api.app import create_app

    c = build(Settings(data_dir=tmp_path, oidc_issuer_url=mock_a.issuer, jwt_audience=AUD,
                       **UNLIMITED))
    await c.migrate()
    await c.start()
    app = create_app(c, run_dispatcher=False)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://t") as api:
            r = await api.post("/v1/auth/token", json={
                "grant_type": "client_credentials", "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET, "scope": "vault:read orders:read"})
            assert r.status_code == 200, r.text
            token = r.json()["access_token"]
            ok = await api.get("/v1/vaults", headers={"Authorization": f"Bearer {token}"})
            assert ok.status_code == 200 and ok.json()["data"] == []
            wrong = await api.post("/v1/auth/token", json={
                "grant_type": "client_credentials", "client_id": CLIENT_ID,
                "client_secret": "nope"})
            assert wrong.status_code == 400 and wrong.json()["code"] == "invalid_client"
            dev = c.issuer.issue("x", TENANT, ["vault:read"])
            refused = await api.get("/v1/vaults", headers={"Authorization": f"Bearer {dev}"})
            assert refused.status_code == 401
    finally:
        await c.close()
