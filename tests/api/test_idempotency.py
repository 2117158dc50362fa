"""IdempotencyMiddleware on a tiny FastAPI app (httpx.ASGITransport, embedded MemoryStore)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from vanta.adapters.cache.memory import MemoryStore
from vanta.entrypoints.api import problems
from vanta.entrypoints.api.idempotency import (
    IdempotencyMiddleware,
    fingerprint,
    path_matches,
)
from vanta.entrypoints.api.problems import ApiProblem


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@dataclass
class Harness:
    client: httpx.AsyncClient
    store: MemoryStore
    clock: Clock
    calls: Counter[str] = field(default_factory=Counter)
    started: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    resolver_calls: int = 0


def user(name: str = "alice") -> dict[str, str]:
    return {"X-User": name}


def idem(key: str, name: str = "alice") -> dict[str, str]:
    return {"Idempotency-Key": key, **user(name)}


def build(h: Harness) -> FastAPI:
    app = FastAPI()
    problems.install(app)

    def who(request: Request) -> str:
        name = request.headers.get("x-user")
        if name is None:
            raise ApiProblem(401, "unauthenticated", "a bearer token is required")
        return name

    @app.post("/v1/orders")
    async def create(request: Request) -> JSONResponse:
        who(request)
        h.calls["orders"] += 1
        body = await request.json()
        oid = uuid.uuid4().hex  # differs on every run: a replay must show the first one
        return JSONResponse({"id": oid, "echo": body, "n": h.calls["orders"]}, status_code=201,
                            headers={"Location": f"/v1/orders/{oid}", "X-Other": "dropped"})

    @app.patch("/v1/orders/{oid}")
    async def patch(oid: str, request: Request) -> dict[str, Any]:
        h.calls["patch"] += 1
        return {"id": oid, "patched": await request.json(), "n": h.calls["patch"]}

    @app.get("/v1/orders")
    async def listing() -> dict[str, Any]:
        h.calls["get"] += 1
        return {"data": [], "n": h.calls["get"]}

    @app.post("/v1/slow")
    async def slow() -> dict[str, Any]:
        h.calls["slow"] += 1
        h.started.set()
        await h.release.wait()
        return {"n": h.calls["slow"]}

    @app.post("/v1/flaky")
    async def flaky() -> JSONResponse:
        h.calls["flaky"] += 1
        if h.calls["flaky"] == 1:
            return JSONResponse({"error": "upstream down"}, status_code=503)
        return JSONResponse({"n": h.calls["flaky"]}, status_code=201)

    @app.post("/v1/boom")
    async def boom() -> dict[str, Any]:
        h.calls["boom"] += 1
        if h.calls["boom"] == 1:
            raise RuntimeError("first call explodes")
        return {"n": h.calls["boom"]}

    @app.post("/v1/missing")
    async def missing() -> None:
        h.calls["missing"] += 1
        raise ApiProblem(404, "vault_not_found", f"vault V{h.calls['missing']} not found")

    @app.post("/v1/stream")
    async def stream() -> StreamingResponse:
        h.calls["stream"] += 1
        n = h.calls["stream"]

        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"chunk{i}-{n};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.post("/v1/big")
    async def big() -> JSONResponse:
        h.calls["big"] += 1
        return JSONResponse({"blob": "x" * 5000})

    @app.post("/v1/hooks/provider")
    async def hook() -> dict[str, Any]:
        h.calls["hook"] += 1
        return {"n": h.calls["hook"]}

    @app.post("/v1/auth/token")
    async def token() -> dict[str, Any]:
        return {"access_token": "t"}

    async def resolve(scope: Scope) -> str | None:
        h.resolver_calls += 1
        for k, v in scope["headers"]:
            if k == b"x-user":
                return f"tnt_a:{v.decode()}"
        return None

    app.add_middleware(IdempotencyMiddleware, store=h.store, resolve_principal=resolve,
                       max_response_bytes=4096)
    return app


@pytest.fixture
async def h() -> AsyncIterator[Harness]:
    clock = Clock()
    h = Harness(client=None, store=MemoryStore(clock=clock), clock=clock)  # type: ignore[arg-type]
    transport = httpx.ASGITransport(app=build(h), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        h.client = client
        yield h


def assert_problem(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert set(body) >= {"type", "title", "status", "detail", "code"}
    assert body["status"] == status and body["code"] == code
    assert body["type"] == problems.PROBLEM_TYPE_BASE + code
    return body


async def test_a_retry_replays_the_first_answer_byte_for_byte(h: Harness) -> None:
    first = await h.client.post("/v1/orders?x=1", json={"qty": 1}, headers=idem("k-1"))
    assert first.status_code == 201
    assert "idempotency-replayed" not in first.headers
    for _ in range(5):
        again = await h.client.post("/v1/orders?x=1", json={"qty": 1}, headers=idem("k-1"))
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotency-replayed"] == "true"
        assert again.headers["content-type"] == first.headers["content-type"]
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["content-length"] == str(len(first.content))
        assert "x-other" not in again.headers  # only content-type and location are kept
    assert h.calls["orders"] == 1


async def test_a_new_key_runs_again(h: Harness) -> None:
    a = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-a"))
    b = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-b"))
    assert a.json()["id"] != b.json()["id"] and h.calls["orders"] == 2


@pytest.mark.parametrize(("path", "body"), [
    ("/v1/orders", {"qty": 2}),       # other body
    ("/v1/orders?x=2", {"qty": 1}),   # other query
    ("/v1/orders/o1", {"qty": 1}),    # other path (PATCH below)
])
async def test_reusing_a_key_for_another_request_is_422(h: Harness, path: str,
                                                        body: dict[str, Any]) -> None:
    first = await h.client.post("/v1/orders?x=1", json={"qty": 1}, headers=idem("k-1"))
    assert first.status_code == 201
    method = "PATCH" if path == "/v1/orders/o1" else "POST"
    r = await h.client.request(method, path, json=body, headers=idem("k-1"))
    assert_problem(r, 422, "idempotency_key_reused")
    assert h.calls["orders"] == 1 and h.calls["patch"] == 0


async def test_a_duplicate_while_the_first_runs_is_409_then_replays(h: Harness) -> None:
    first = asyncio.create_task(h.client.post("/v1/slow", headers=idem("k-slow")))
    await asyncio.wait_for(h.started.wait(), 2)
    dup = await h.client.post("/v1/slow", headers=idem("k-slow"))
    assert_problem(dup, 409, "idempotency_key_in_use")
    assert dup.headers["retry-after"] == "1"
    other = await h.client.post("/v1/slow", content=b"other", headers=idem("k-slow"))
    assert_problem(other, 422, "idempotency_key_reused")
    h.release.set()
    done = await asyncio.wait_for(first, 2)
    assert done.status_code == 200 and done.json() == {"n": 1}
    replay = await h.client.post("/v1/slow", headers=idem("k-slow"))
    assert replay.content == done.content and replay.headers["idempotency-replayed"] == "true"
    assert h.calls["slow"] == 1


async def test_many_concurrent_duplicates_run_the_handler_once(h: Harness) -> None:
    results = await asyncio.gather(*(h.client.post("/v1/orders", json={"qty": 1},
                                                   headers=idem("k-many"))
                                     for _ in range(20)))
    assert h.calls["orders"] == 1
    statuses = Counter(r.status_code for r in results)
    assert statuses[201] >= 1 and set(statuses) <= {201, 409}


async def test_a_5xx_is_not_stored_and_a_retry_runs_again(h: Harness) -> None:
    r1 = await h.client.post("/v1/flaky", headers=idem("k-f"))
    assert r1.status_code == 503
    r2 = await h.client.post("/v1/flaky", headers=idem("k-f"))
    assert r2.status_code == 201 and "idempotency-replayed" not in r2.headers
    r3 = await h.client.post("/v1/flaky", headers=idem("k-f"))
    assert r3.content == r2.content and r3.headers["idempotency-replayed"] == "true"
    assert h.calls["flaky"] == 2


async def test_an_exception_releases_the_key(h: Harness) -> None:
    r1 = await h.client.post("/v1/boom", headers=idem("k-b"))
    assert_problem(r1, 500, "internal_error")
    r2 = await h.client.post("/v1/boom", headers=idem("k-b"))
    assert r2.status_code == 200 and r2.json() == {"n": 2}
    r3 = await h.client.post("/v1/boom", headers=idem("k-b"))
    assert r3.headers["idempotency-replayed"] == "true" and h.calls["boom"] == 2


async def test_a_4xx_is_stored_and_replayed(h: Harness) -> None:
    r1 = await h.client.post("/v1/missing", headers=idem("k-m"))
    assert_problem(r1, 404, "vault_not_found")
    r2 = await h.client.post("/v1/missing", headers=idem("k-m"))
    assert r2.content == r1.content and r2.headers["idempotency-replayed"] == "true"
    assert r2.headers["content-type"] == "application/problem+json"
    assert h.calls["missing"] == 1


@pytest.mark.parametrize("headers", [
    {},
    {"Idempotency-Key": ""},
    {"Idempotency-Key": "k" * 256},
    {"Idempotency-Key": "tab\there"},
])
async def test_a_missing_or_malformed_key_is_400(h: Harness, headers: dict[str, str]) -> None:
    r = await h.client.post("/v1/orders", json={"qty": 1}, headers={**headers, **user()})
    assert_problem(r, 400, "idempotency_key_required")
    assert h.calls["orders"] == 0


async def test_two_keys_in_one_request_are_400(h: Harness) -> None:
    r = await h.client.post("/v1/orders", json={"qty": 1},
                            headers=[("Idempotency-Key", "a"), ("Idempotency-Key", "b"),
                                     ("X-User", "alice")])
    assert_problem(r, 400, "idempotency_key_required")


async def test_the_longest_printable_key_is_accepted(h: Harness) -> None:
    key = ("".join(chr(c) for c in range(0x20, 0x7F)) * 3)[1:256]  # 255, all printable
    assert len(key) == 255 and key == key.strip()
    r = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem(key))
    assert r.status_code == 201


async def test_patch_is_governed_too(h: Harness) -> None:
    r = await h.client.patch("/v1/orders/o1", json={"a": 1}, headers=user())
    assert_problem(r, 400, "idempotency_key_required")
    r1 = await h.client.patch("/v1/orders/o1", json={"a": 1}, headers=idem("p"))
    r2 = await h.client.patch("/v1/orders/o1", json={"a": 1}, headers=idem("p"))
    assert r2.content == r1.content and h.calls["patch"] == 1


async def test_get_is_unaffected(h: Harness) -> None:
    r1 = await h.client.get("/v1/orders", headers=idem("g"))
    r2 = await h.client.get("/v1/orders", headers=idem("g"))
    assert r1.json()["n"] == 1 and r2.json()["n"] == 2
    assert "idempotency-replayed" not in r2.headers
    assert (await h.client.get("/v1/orders")).status_code == 200
    assert len(h.store) == 0


@pytest.mark.parametrize("path", ["/v1/hooks/provider", "/v1/auth/token"])
async def test_excluded_paths_need_no_key(h: Harness, path: str) -> None:
    assert (await h.client.post(path, headers=user())).status_code == 200
    assert (await h.client.post(path, headers=user())).status_code == 200
    assert len(h.store) == 0


async def test_unauthenticated_requests_reach_the_route_s_own_401(h: Harness) -> None:
    r = await h.client.post("/v1/orders", json={"qty": 1})
    assert_problem(r, 401, "unauthenticated")
    assert len(h.store) == 0


async def test_keys_are_scoped_to_the_caller(h: Harness) -> None:
    a = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("same", "alice"))
    b = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("same", "bob"))
    assert "idempotency-replayed" not in b.headers
    assert a.json()["id"] != b.json()["id"] and h.calls["orders"] == 2


async def test_stored_answers_expire_after_the_ttl(h: Harness) -> None:
    await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-ttl"))
    h.clock.t += 24 * 3600 - 1
    r = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-ttl"))
    assert r.headers.get("idempotency-replayed") == "true"
    h.clock.t += 2
    r = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-ttl"))
    assert "idempotency-replayed" not in r.headers and h.calls["orders"] == 2


async def test_streamed_answers_are_replayed_whole(h: Harness) -> None:
    r1 = await h.client.post("/v1/stream", headers=idem("s"))
    assert r1.text == "chunk0-1;chunk1-1;chunk2-1;"
    r2 = await h.client.post("/v1/stream", headers=idem("s"))
    assert r2.content == r1.content and r2.headers["content-type"].startswith("text/plain")
    assert h.calls["stream"] == 1


async def test_an_answer_too_large_to_keep_is_still_not_run_twice(h: Harness) -> None:
    r1 = await h.client.post("/v1/big", headers=idem("big"))
    assert r1.status_code == 200 and len(r1.content) > 4096
    r2 = await h.client.post("/v1/big", headers=idem("big"))
    assert_problem(r2, 409, "idempotency_response_unavailable")
    assert h.calls["big"] == 1


async def test_an_oversized_request_body_is_413(h: Harness) -> None:
    r = await h.client.post("/v1/orders", content=b"x" * (1024 * 1024 + 1),
                            headers=idem("huge"))
    assert_problem(r, 413, "body_too_large")
    assert h.calls["orders"] == 0


async def test_a_store_outage_refuses_rather_than_runs_unprotected(h: Harness,
                                                                   monkeypatch: Any) -> None:
    async def down(*_: Any) -> bool:
        raise ConnectionError("redis down")

    monkeypatch.setattr(h.store, "set_if_absent", down)
    r = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-down"))
    assert_problem(r, 503, "idempotency_unavailable")
    assert r.headers["retry-after"] == "1" and h.calls["orders"] == 0


async def test_the_record_is_stored_under_a_prefixed_caller_scoped_key(h: Harness) -> None:
    await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-rec"))
    (key,) = h.store._values  # one record, nothing else
    assert key.startswith("vanta:idem:tnt_a:alice:")
    raw = await h.store.get(key)
    assert raw is not None
    record = json.loads(raw)
    assert record["state"] == "done" and record["status"] == 201
    assert record["fp"] == fingerprint("POST", "/v1/orders", b"", b'{"qty":1}')


async def test_lifespan_and_websockets_pass_straight_through() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def never(scope: Scope) -> str | None:
        raise AssertionError("not consulted")

    mw = IdempotencyMiddleware(inner, store=MemoryStore(), resolve_principal=never)

    async def receive() -> Message:
        return {"type": "lifespan.startup"}

    async def send(_: Message) -> None:
        return None

    await mw({"type": "lifespan", "asgi": {"version": "3.0"}}, receive, send)
    await mw({"type": "websocket", "path": "/v1/x", "headers": []}, receive, send)
    assert seen == ["lifespan", "websocket"]


@pytest.mark.parametrize(("path", "hit"), [
    ("/v1/hooks", True), ("/v1/hooks/x/y", True), ("/v1/auth/token", True),
    ("/v1/auth/tokens", False), ("/v1/billing/webhooks/stripe", True), ("/v1/orders", False),
])
def test_exclusion_matching(path: str, hit: bool) -> None:
    from vanta.entrypoints.api.idempotency import DEFAULT_EXCLUDE

    assert path_matches(path, DEFAULT_EXCLUDE) is hit


def test_fingerprint_parts_cannot_run_together() -> None:
    assert fingerprint("POST", "/v1/a", b"b=1", b"") != fingerprint("POST", "/v1/a", b"", b"b=1")
    assert fingerprint("post", "/v1/a", b"", b"x") == fingerprint("POST", "/v1/a", b"", b"x")


async def test_a_key_held_by_a_killed_process_frees_within_the_lock_ttl(h: Harness) -> None:
    body = b'{"qty": 1}'
    headers = {**idem("k-dead"), "content-type": "application/json"}
    first = await h.client.post("/v1/orders", content=body, headers=headers)
    assert first.status_code == 201
    [key] = [k for k in h.store._values if k.startswith("vanta:idem:")]
    # what a process killed mid-request leaves: its reservation, never renewed again
    dead = json.dumps({"state": "running", "at": 0,
                       "fp": fingerprint("POST", "/v1/orders", b"", body)}).encode()
    await h.store.delete(key)
    assert await h.store.set_if_absent(key, dead, 10.0)  # the middleware's default lock
    h.clock.t += 9.9
    r = await h.client.post("/v1/orders", content=body, headers=headers)
    assert_problem(r, 409, "idempotency_key_in_use")
    h.clock.t += 0.2  # 10.1 s after its holder stopped renewing it: the retry runs
    r = await h.client.post("/v1/orders", content=body, headers=headers)
    assert r.status_code == 201 and "idempotency-replayed" not in r.headers
    assert h.calls["orders"] == 2


async def test_a_live_request_slower_than_its_lock_keeps_its_key() -> None:
    # real time: the lock is 0.3 s, the request runs four times that while renewing it
    calls: Counter[str] = Counter()
    started, release = asyncio.Event(), asyncio.Event()
    app = FastAPI()

    @app.post("/v1/slow")
    async def slow() -> dict[str, Any]:
        calls["slow"] += 1
        started.set()
        await release.wait()
        return {"n": calls["slow"]}

    async def resolve(scope: Scope) -> str | None:
        return "tnt_a:alice"

    app.add_middleware(IdempotencyMiddleware, store=MemoryStore(), resolve_principal=resolve,
                       lock_ttl_s=0.3)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = asyncio.create_task(client.post("/v1/slow", headers=idem("k-live")))
        await asyncio.wait_for(started.wait(), 2)
        for _ in range(6):  # 1.2 s: four lock lengths
            await asyncio.sleep(0.2)
            dup = await client.post("/v1/slow", headers=idem("k-live"))
            assert_problem(dup, 409, "idempotency_key_in_use")
        release.set()
        assert (await asyncio.wait_for(first, 2)).json() == {"n": 1}
        replay = await client.post("/v1/slow", headers=idem("k-live"))
        assert replay.headers["idempotency-replayed"] == "true"
    assert calls["slow"] == 1


async def test_an_answer_the_store_refuses_for_a_moment_is_still_stored(
        h: Harness, monkeypatch: Any) -> None:
    """A failover between running the request and storing its answer: the write is retried,
    so the retry after the failover replays instead of running the request again."""
    real_set = h.store.set
    failures = 3

    async def flaky(key: str, value: bytes, ttl_s: float) -> None:
        nonlocal failures
        if failures:
            failures -= 1
            raise ConnectionError("no master")
        await real_set(key, value, ttl_s)

    monkeypatch.setattr(h.store, "set", flaky)
    first = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-flaky"))
    assert first.status_code == 201 and failures == 0
    again = await h.client.post("/v1/orders", json={"qty": 1}, headers=idem("k-flaky"))
    assert again.headers["idempotency-replayed"] == "true"
    assert again.json() == first.json() and h.calls["orders"] == 1


async def test_an_answer_that_cannot_be_stored_in_time_releases_the_key(
        monkeypatch: Any) -> None:
    clock = Clock()
    h = Harness(client=None, store=MemoryStore(clock=clock), clock=clock)  # type: ignore[arg-type]
    app = build(h)
    app.user_middleware[0].kwargs["store_retry_s"] = 0.2

    async def down(*_: Any) -> None:
        raise ConnectionError("no master")

    monkeypatch.setattr(h.store, "set", down)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post("/v1/orders", json={"qty": 1}, headers=idem("k-gone"))
        assert r.status_code == 201  # it ran: the caller still gets its answer
    assert len(h.store) == 0  # the reservation was released, not left to block the key
