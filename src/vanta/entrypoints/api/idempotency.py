"""``Idempotency-Key`` for unsafe calls: a retried POST/PATCH runs once and replays its answer.

Pure ASGI middleware (no ``BaseHTTPMiddleware``): only governed requests are touched; lifespan,
websockets, GETs and excluded paths pass straight through.

A governed request (``POST``/``PATCH`` under ``/v1/``, minus the exclusions) of an authenticated
caller must carry one ``Idempotency-Key`` (1–255 printable ASCII characters), else
``400 idempotency_key_required``. The key is scoped to the caller (the principal resolver's
``"tenant:subject"``); unauthenticated requests pass through untouched so the route's own 401
answers. The request is fingerprinted as sha256(method, path, query, raw body), then:

* first use: the key is reserved atomically (an in-progress marker that expires after
  ``lock_ttl_s`` and is renewed every third of that while the request runs, so a request
  slower than the lock keeps its key, and a killed process frees its keys within seconds),
  the app runs, and its status,
  ``content-type``/``location`` and body are stored for ``ttl_s`` *before* the client is
  answered (a client that disconnects can still collect its answer by retrying);
* same key, same fingerprint, finished: the stored answer, byte for byte, plus
  ``Idempotency-Replayed: true``;
* same key, another fingerprint: ``422 idempotency_key_reused``;
* same key while the first is still running: ``409 idempotency_key_in_use``, ``Retry-After: 1``;
* an answer >= 500 (or an exception) is not stored: the reservation is released, so a retry
  runs again. 2xx and 4xx answers are stored.

When the store cannot be reached the request is refused (``503 idempotency_unavailable``,
``Retry-After``) rather than run unprotected; during a Redis Sentinel failover that is what a
caller sees until the sentinels name the new master. A request that already ran when the
store went away keeps trying to store its answer for ``store_retry_s`` (long enough for a
failover to finish) before answering, because an answer that is not stored lets a retry run
the request a second time.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vanta.application.ports.cache import CacheStore
from vanta.entrypoints.api.problems import problem

__all__ = [
    "DEFAULT_EXCLUDE",
    "IdempotencyMiddleware",
    "PrincipalResolver",
    "fingerprint",
    "path_matches",
    "resolve_principal",
]

log = logging.getLogger("vanta.api.idempotency")

PrincipalResolver = Callable[[Scope], Awaitable[str | None]]
"""``async (scope) -> "tenant:subject" | None`` — None when the request is unauthenticated."""

DEFAULT_EXCLUDE: tuple[str, ...] = ("/v1/auth/token", "/v1/hooks/", "/v1/billing/webhooks/")
HEADER = b"idempotency-key"
REPLAYED = (b"idempotency-replayed", b"true")
_STATE_KEY = "vanta.principal"
_RUNNING, _DONE = "running", "done"


def path_matches(path: str, patterns: Iterable[str]) -> bool:
    """``/v1/hooks/`` (or ``/v1/hooks``) matches ``/v1/hooks`` and everything below it, and
    ``/v1/auth/token`` matches itself and below, but not ``/v1/auth/tokens``."""
    for p in patterns:
        base = p.rstrip("/")
        if path == base or path.startswith(base + "/"):
            return True
    return False


async def resolve_principal(scope: Scope, resolver: PrincipalResolver) -> str | None:
    """Calls ``resolver`` once per request: the answer is kept in ``scope["state"]`` so that
    the rate limiter and this middleware verify a bearer token only once between them."""
    state = scope.get("state")
    if isinstance(state, dict):
        cached = state.get(_STATE_KEY)
        if isinstance(cached, tuple) and cached[0] is resolver:
            return cached[1]  # type: ignore[no-any-return]
    value = await resolver(scope)
    if not isinstance(state, dict):
        state = {}
        scope["state"] = state
    state[_STATE_KEY] = (resolver, value)
    return value


def fingerprint(method: str, path: str, query: bytes, body: bytes) -> str:
    """sha256 over length-prefixed parts, so no two different requests can run together."""
    h = hashlib.sha256()
    for part in (method.upper().encode(), path.encode("utf-8", "surrogateescape"), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def _key_from(scope: Scope) -> str | None:
    values = [v for k, v in scope.get("headers", ()) if k.lower() == HEADER]
    if len(values) != 1:
        return None
    raw = bytes(values[0]).strip(b" \t")
    if not 1 <= len(raw) <= 255 or any(b < 0x20 or b > 0x7E for b in raw):
        return None
    return raw.decode("ascii")


class _TooLarge(Exception):
    pass


class IdempotencyMiddleware:
    """``app.add_middleware(IdempotencyMiddleware, store=..., resolve_principal=...)``.

    Put it inside the rate limiter (added before it), so a replay still counts against limits.
    """

    def __init__(self, app: ASGIApp, *, store: CacheStore,
                 resolve_principal: PrincipalResolver,
                 ttl_s: float = 24 * 3600,
                 lock_ttl_s: float = 10.0,
                 methods: Iterable[str] = ("POST", "PATCH"),
                 prefixes: Iterable[str] = ("/v1/",),
                 exclude: Iterable[str] = DEFAULT_EXCLUDE,
                 key_prefix: str = "vanta:idem:",
                 replay_headers: Iterable[str] = ("content-type", "location"),
                 max_request_bytes: int = 1024 * 1024,
                 max_response_bytes: int = 1024 * 1024,
                 store_retry_s: float = 10.0) -> None:
        self.app = app
        self.store = store
        self.resolver = resolve_principal
        self.ttl_s = ttl_s
        self.lock_ttl_s = lock_ttl_s
        self.methods = frozenset(m.upper() for m in methods)
        self.prefixes = tuple(prefixes)
        self.exclude = tuple(exclude)
        self.key_prefix = key_prefix
        self.replay_headers = frozenset(h.lower().encode("latin-1") for h in replay_headers)
        self.max_request_bytes = max_request_bytes
        self.max_response_bytes = max_response_bytes
        self.store_retry_s = store_retry_s

    def governs(self, scope: Scope) -> bool:
        if scope["type"] != "http" or scope["method"].upper() not in self.methods:
            return False
        path: str = scope["path"]
        return path.startswith(self.prefixes) and not path_matches(path, self.exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.governs(scope):
            await self.app(scope, receive, send)
            return
        principal = await resolve_principal(scope, self.resolver)
        if principal is None:
            await self.app(scope, receive, send)  # the route answers 401 itself
            return
        key = _key_from(scope)
        if key is None:
            await self._problem(scope, receive, send, 400, "idempotency_key_required",
                                f"{scope['method'].upper()} {scope['path']} needs one "
                                "Idempotency-Key header of 1 to 255 printable ASCII characters")
            return
        try:
            body = await self._read_body(receive)
        except _TooLarge:
            await self._problem(scope, receive, send, 413, "body_too_large",
                                f"the body exceeds {self.max_request_bytes} bytes")
            return
        if body is None:
            return  # the client went away before sending its body: nothing to run
        fp = fingerprint(scope["method"], scope["path"], scope.get("query_string", b""), body)
        store_key = (f"{self.key_prefix}{principal}:"
                     f"{hashlib.sha256(key.encode('ascii')).hexdigest()}")
        marker = json.dumps({"state": _RUNNING, "fp": fp, "at": time.time()}).encode()
        try:
            existing = await self._reserve(store_key, marker, fp)
        except Exception as e:
            log.warning("idempotency store unavailable: %r", e)
            await self._problem(scope, receive, send, 503, "idempotency_unavailable",
                                "the idempotency store cannot be reached; retry with the "
                                "same Idempotency-Key", headers={"Retry-After": "1"})
            return
        if existing is not None:
            await self._answer_existing(existing, fp, scope, receive, send)
            return
        beat = asyncio.ensure_future(self._keep_reserved(store_key, marker))
        try:
            await self._run(scope, body, receive, send, store_key, fp)
        finally:
            beat.cancel()

    # --- first request ----------------------------------------------------------------------

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                raise _TooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _reserve(self, store_key: str, marker: bytes, fp: str) -> dict[str, Any] | None:
        """None: reserved for this request; else the record that holds the key."""
        for _ in range(3):
            if await self.store.set_if_absent(store_key, marker, self.lock_ttl_s):
                return None
            raw = await self.store.get(store_key)
            if raw is not None:
                record: dict[str, Any] = json.loads(raw)
                return record
            # expired between the two calls: try to reserve again
        return {"state": _RUNNING, "fp": fp}

    async def _keep_reserved(self, store_key: str, marker: bytes) -> None:
        """The reservation's heartbeat while the request runs; it stops by itself once the
        key holds anything else (the stored answer, or nothing)."""
        while True:
            await asyncio.sleep(self.lock_ttl_s / 3)
            try:
                if not await self.store.extend_if_equal(store_key, marker, self.lock_ttl_s):
                    return
            except Exception as e:  # the store is away: the reservation may lapse
                log.warning("could not renew an idempotency reservation: %r", e)

    async def _release(self, store_key: str) -> None:
        with anyio.CancelScope(shield=True):  # also when the request is being cancelled
            try:
                await self.store.delete(store_key)
            except Exception as e:
                log.warning("could not release idempotency key (it expires by itself): %r", e)

    async def _run(self, scope: Scope, body: bytes, receive: Receive, send: Send,
                   store_key: str, fp: str) -> None:
        body_given = False

        async def replay_receive() -> Message:
            nonlocal body_given
            if not body_given:
                body_given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        held: list[Message] = []  # buffered until the answer is stored
        status = 0
        headers: list[tuple[bytes, bytes]] = []
        size = 0
        streaming = False  # past max_response_bytes or an unknown message: just forward
        finished = False

        async def capture(message: Message) -> None:
            nonlocal status, headers, size, streaming, finished
            kind = message["type"]
            if finished:
                await send(message)
                return
            if kind == "http.response.start":
                status = int(message["status"])
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
                held.append(message)
                return
            if kind != "http.response.body" and not streaming:
                streaming = True  # e.g. pathsend or trailers: cannot be replayed
            if kind == "http.response.body":
                size += len(message.get("body", b""))
                if size > self.max_response_bytes:
                    streaming = True
                final = not message.get("more_body", False)
            else:
                final = kind == "http.response.pathsend"  # a file: one message, no body
            held.append(message)
            if final:
                finished = True
                await self._finish(store_key, fp, status, headers, held, replayable=not streaming)
            if streaming or final:
                for m in held:
                    await send(m)
                held.clear()

        try:
            await self.app(scope, replay_receive, capture)
        except BaseException:
            if not finished:
                await self._release(store_key)
            raise
        if not finished:  # the app returned without a complete answer
            await self._release(store_key)
            for m in held:
                await send(m)

    async def _finish(self, store_key: str, fp: str, status: int,
                      headers: list[tuple[bytes, bytes]], held: list[Message], *,
                      replayable: bool) -> None:
        if status >= 500:
            await self._release(store_key)
            return
        record: dict[str, Any] = {"state": _DONE, "fp": fp, "status": status, "at": time.time()}
        if replayable:
            body = b"".join(m.get("body", b"") for m in held
                            if m["type"] == "http.response.body")
            record["headers"] = [[k.decode("latin-1"), v.decode("latin-1")]
                                 for k, v in headers if k.lower() in self.replay_headers]
            record["body"] = base64.b64encode(body).decode("ascii")
        if not await self._store_answer(store_key, json.dumps(record).encode()):
            await self._release(store_key)

    async def _store_answer(self, store_key: str, record: bytes) -> bool:
        """Writes the answer, retrying with backoff for up to ``store_retry_s``: the request
        has run, and only a stored answer stops a retry from running it again."""
        deadline = time.monotonic() + self.store_retry_s
        pause = 0.05
        while True:
            try:
                await self.store.set(store_key, record, self.ttl_s)
                return True
            except Exception as e:
                if time.monotonic() + pause > deadline:
                    log.error("could not store the idempotent answer; a retry of this "
                              "request may run it again: %r", e)
                    return False
                log.warning("storing the idempotent answer failed, retrying: %r", e)
            await anyio.sleep(pause)
            pause = min(pause * 2, 0.5)

    # --- later requests ---------------------------------------------------------------------

    async def _answer_existing(self, record: dict[str, Any], fp: str, scope: Scope,
                               receive: Receive, send: Send) -> None:
        if record.get("fp") != fp:
            await self._problem(scope, receive, send, 422, "idempotency_key_reused",
                                "this Idempotency-Key was already used for a different request "
                                "(method, path, query or body differ)")
        elif record.get("state") != _DONE:
            await self._problem(scope, receive, send, 409, "idempotency_key_in_use",
                                "a request with this Idempotency-Key is still being processed",
                                headers={"Retry-After": "1"})
        elif "body" not in record:
            await self._problem(scope, receive, send, 409, "idempotency_response_unavailable",
                                f"the request with this Idempotency-Key completed with status "
                                f"{record.get('status')} but its answer was too large to keep")
        else:
            body = base64.b64decode(record["body"])
            headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in record["headers"]]
            headers += [(b"content-length", str(len(body)).encode()), REPLAYED]
            await send({"type": "http.response.start", "status": int(record["status"]),
                        "headers": headers})
            await send({"type": "http.response.body", "body": body, "more_body": False})

    @staticmethod
    async def _problem(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                       detail: str, headers: dict[str, str] | None = None) -> None:
        await problem(status, code, detail, headers=headers)(scope, receive, send)
