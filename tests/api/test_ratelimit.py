"""RateLimitMiddleware on a tiny FastAPI app, on a hand-driven clock (MemoryStore)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from starlette.types import Scope

from vanta.adapters.cache.memory import MemoryStore
from vanta.entrypoints.api import problems
from vanta.entrypoints.api.client_address import ClientAddressMiddleware, TrustedProxies
from vanta.entrypoints.api.idempotency import IdempotencyMiddleware
from vanta.entrypoints.api.ratelimit import RateLimitMiddleware, RateLimitPolicy, client_ip


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Resolver:
    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, scope: Scope) -> str | None:
        self.calls += 1
        for k, v in scope["headers"]:
            if k == b"x-user":
                return f"tnt_a:{v.decode()}"
        return None


def build(store: MemoryStore, resolver: Resolver, **kw: Any) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    @app.get("/v1/things")
    async def things() -> dict[str, Any]:
        return {"ok": True}

    @app.post("/v1/things")
    async def make() -> dict[str, Any]:
        return {"made": True}

    for path in ("/healthz", "/readyz", "/metrics"):
        app.add_api_route(path, lambda: {"status": "ok"}, methods=["GET"])

    app.add_middleware(RateLimitMiddleware, store=store, resolve_principal=resolver, **kw)
    return app


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(clock: Clock) -> MemoryStore:
    return MemoryStore(clock=clock)


def client_for(app: FastAPI, ip: str = "10.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(ip, 40000)),
                             base_url="http://test")


def rl(r: httpx.Response) -> tuple[str, str, str, str]:
    return (r.headers["ratelimit-limit"], r.headers["ratelimit-remaining"],
            r.headers["ratelimit-reset"], r.headers["ratelimit-policy"])


async def test_the_burst_passes_then_429_with_retry_after(store: MemoryStore,
                                                          clock: Clock) -> None:
    app = build(store, Resolver(), policy=RateLimitPolicy(limit=60, window_s=60, burst=5))
    async with client_for(app) as c:
        seen = [await c.get("/v1/things") for _ in range(5)]
        assert [r.status_code for r in seen] == [200] * 5
        assert [rl(r) for r in seen] == [("60", str(n), str(5 - n), "60;w=60;burst=5")
                                         for n in (4, 3, 2, 1, 0)]
        r = await c.get("/v1/things")
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        body = r.json()
        assert body["code"] == "rate_limited" and body["status"] == 429
        assert set(body) >= {"type", "title", "status", "detail", "code"}
        assert r.headers["retry-after"] == "1"
        assert rl(r) == ("60", "0", "5", "60;w=60;burst=5")
        clock.t += 0.4
        r = await c.get("/v1/things")
        assert r.status_code == 429 and r.headers["retry-after"] == "1"  # 0.6 s, rounded up
        clock.t += 0.6
        r = await c.get("/v1/things")
        assert r.status_code == 200 and r.headers["ratelimit-remaining"] == "0"


async def test_retry_after_rounds_up_to_whole_seconds(store: MemoryStore) -> None:
    app = build(store, Resolver(), policy=RateLimitPolicy(limit=1, window_s=60, burst=1))
    async with client_for(app) as c:
        assert (await c.get("/v1/things")).status_code == 200
        r = await c.get("/v1/things")
        assert r.status_code == 429 and r.headers["retry-after"] == "60"


async def test_the_default_policy_is_60_a_minute_with_a_burst_of_20(store: MemoryStore) -> None:
    app = build(store, Resolver())
    async with client_for(app) as c:
        results = [await c.get("/v1/things") for _ in range(21)]
    assert [r.status_code for r in results].count(200) == 20
    assert results[0].headers["ratelimit-policy"] == "60;w=60;burst=20"
    assert results[0].headers["ratelimit-limit"] == "60"
    assert results[0].headers["ratelimit-remaining"] == "19"
    assert results[-1].status_code == 429


async def test_users_have_their_own_buckets(store: MemoryStore) -> None:
    app = build(store, Resolver(), policy=RateLimitPolicy(limit=600, window_s=60, burst=100),
                user_policy=RateLimitPolicy(limit=60, window_s=60, burst=3))
    async with client_for(app) as c:
        alice = [await c.post("/v1/things", headers={"X-User": "alice"}) for _ in range(4)]
        assert [r.status_code for r in alice] == [200, 200, 200, 429]
        assert alice[0].headers["ratelimit-policy"] == "60;w=60;burst=3"  # the tighter bucket
        assert alice[0].headers["ratelimit-remaining"] == "2"
        bob = await c.post("/v1/things", headers={"X-User": "bob"})
        assert bob.status_code == 200 and bob.headers["ratelimit-remaining"] == "2"
        anon = await c.get("/v1/things")  # no user: the IP bucket only
        assert anon.status_code == 200
        assert anon.headers["ratelimit-policy"] == "600;w=60;burst=100"
        assert anon.headers["ratelimit-remaining"] == str(100 - 6)


async def test_a_user_is_limited_across_ips(store: MemoryStore) -> None:
    app = build(store, Resolver(), policy=RateLimitPolicy(limit=600, window_s=60, burst=100),
                user_policy=RateLimitPolicy(limit=60, window_s=60, burst=2))
    async with client_for(app, "10.0.0.1") as a, client_for(app, "10.0.0.2") as b:
        assert (await a.get("/v1/things", headers={"X-User": "carol"})).status_code == 200
        assert (await b.get("/v1/things", headers={"X-User": "carol"})).status_code == 200
        r = await b.get("/v1/things", headers={"X-User": "carol"})
        assert r.status_code == 429 and r.json()["code"] == "rate_limited"


async def test_ips_have_their_own_buckets(store: MemoryStore) -> None:
    app = build(store, Resolver(), policy=RateLimitPolicy(limit=60, window_s=60, burst=2))
    async with client_for(app, "10.0.0.1") as a, client_for(app, "10.0.0.2") as b:
        assert [(await a.get("/v1/things")).status_code for _ in range(3)] == [200, 200, 429]
        assert [(await b.get("/v1/things")).status_code for _ in range(3)] == [200, 200, 429]


async def test_an_ip_over_its_limit_is_refused_without_verifying_the_token(
        store: MemoryStore) -> None:
    resolver = Resolver()
    app = build(store, resolver, policy=RateLimitPolicy(limit=60, window_s=60, burst=1))
    async with client_for(app) as c:
        assert (await c.get("/v1/things", headers={"X-User": "dave"})).status_code == 200
        assert resolver.calls == 1
        assert (await c.get("/v1/things", headers={"X-User": "dave"})).status_code == 429
        assert resolver.calls == 1


async def test_x_forwarded_for_is_ignored_unless_trusted(store: MemoryStore) -> None:
    policy = RateLimitPolicy(limit=60, window_s=60, burst=1)
    async with client_for(build(store, Resolver(), policy=policy)) as c:
        assert (await c.get("/v1/things", headers={"X-Forwarded-For": "1.1.1.1"})
                ).status_code == 200
        assert (await c.get("/v1/things", headers={"X-Forwarded-For": "2.2.2.2"})
                ).status_code == 429  # same ASGI client: spoofing does not help
    trusted = build(MemoryStore(), Resolver(), policy=policy)
    # the client address is decided outside the limiter, by the proxies the settings trust
    trusted.add_middleware(ClientAddressMiddleware, trusted=TrustedProxies.parse(["10.0.0.1"]))
    async with client_for(trusted) as c:
        assert (await c.get("/v1/things", headers={"X-Forwarded-For": "1.1.1.1"})
                ).status_code == 200
        assert (await c.get("/v1/things", headers={"X-Forwarded-For": "2.2.2.2"})
                ).status_code == 200
        assert (await c.get("/v1/things", headers={"X-Forwarded-For": "9.9.9.9, 2.2.2.2"})
                ).status_code == 429  # the right-most hop (our proxy's) counts


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
async def test_ops_paths_are_exempt(store: MemoryStore, path: str) -> None:
    app = build(store, Resolver(), policy=RateLimitPolicy(limit=60, window_s=60, burst=1))
    async with client_for(app) as c:
        results = [await c.get(path) for _ in range(5)]
        assert all(r.status_code == 200 for r in results)
        assert "ratelimit-limit" not in results[0].headers
        assert (await c.get("/v1/things")).status_code == 200  # no token was spent


async def test_a_store_outage_lets_requests_through(store: MemoryStore,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    async def down(*_: Any, **__: Any) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(store, "take", down)
    async with client_for(build(store, Resolver())) as c:
        r = await c.get("/v1/things", headers={"X-User": "erin"})
    assert r.status_code == 200 and "ratelimit-limit" not in r.headers


async def test_with_idempotency_the_token_is_verified_once_and_replays_count(
        store: MemoryStore) -> None:
    resolver = Resolver()
    app = FastAPI()
    problems.install(app)
    runs = 0

    @app.post("/v1/things")
    async def make() -> dict[str, Any]:
        nonlocal runs
        runs += 1
        return {"run": runs}

    app.add_middleware(IdempotencyMiddleware, store=store, resolve_principal=resolver)
    app.add_middleware(RateLimitMiddleware, store=store, resolve_principal=resolver,
                       policy=RateLimitPolicy(limit=60, window_s=60, burst=2))
    headers = {"X-User": "frank", "Idempotency-Key": "k1"}
    async with client_for(app) as c:
        r1 = await c.post("/v1/things", headers=headers)
        assert resolver.calls == 1  # shared through scope["state"]
        r2 = await c.post("/v1/things", headers=headers)
        r3 = await c.post("/v1/things", headers=headers)
    assert r1.status_code == r2.status_code == 200 and runs == 1
    assert r2.headers["idempotency-replayed"] == "true"
    assert r2.headers["ratelimit-remaining"] == "0"
    assert r3.status_code == 429


@pytest.mark.parametrize(("client", "expected"), [
    (("10.1.2.3", 1), "10.1.2.3"),
    (("2001:db8:1:2:3:4:5:6", 1), "2001:db8:1:2::/64"),
    (("::ffff:10.0.0.9", 1), "10.0.0.9"),
    (None, "unknown"),
    (("testclient", 1), "testclient"),
])
def test_client_ip(client: tuple[str, int] | None, expected: str) -> None:
    # the limiter reads no header: X-Forwarded-For is client_address's business
    scope = {"type": "http", "client": client,
             "headers": [(b"x-forwarded-for", b"1.2.3.4")]}
    assert client_ip(scope) == expected


def test_policies_must_be_positive() -> None:
    with pytest.raises(ValueError):
        RateLimitPolicy(burst=0)
    assert RateLimitPolicy().rate_per_s == 1.0
