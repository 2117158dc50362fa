"""The webhook sender contract (:class:`~vanta.application.ports.delivery.WebhookSender`), run
on every implementation: the scripted fake (``tests/fakes/sender.py``) and the aiohttp sender
against a local aiohttp receiver on 127.0.0.1 (port 0) that answers what each case scripts.

What the dispatcher relies on: an HTTP answer comes back as its status (redirects are not
followed), with a bounded excerpt of the body and ``Retry-After`` verbatim; no answer in time,
or no connection, is ``status=None`` with an error and retryable; a target refused before any
connection is ``refused=True``. The aiohttp sender's own guarantees (SSRF vetting, TLS, one
lookup, per-endpoint slots, exact time bounds) stay in
``tests/integration/test_webhook_sender.py``.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

import pytest
from aiohttp import web

from tests.fakes.sender import Answer, FakeWebhookSender
from vanta.adapters.webhooks.sender import AiohttpWebhookSender
from vanta.adapters.webhooks.ssrf import TargetPolicy
from vanta.application.ports.delivery import SendResult, WebhookSender

HEADERS = {"Content-Type": "application/json", "X-Vanta-Signature": "sha256=abc",
           "webhook-id": "fo-1"}
BODY = b'{"symbol":"AAPL","qty":"7"}'
TIMEOUT_S = 0.5
EXCERPT = 100
FLOOD_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """What a receiver does with one request."""

    status: int = 200
    body: bytes = b"ok"
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False  # never answers
    flood: bool = False  # streams FLOOD_BYTES of b"x"


class Harness(Protocol):
    sender: WebhookSender

    async def url(self, path: str, reply: Reply) -> str: ...

    def received(self, path: str) -> list[tuple[dict[str, str], bytes]]: ...

    def unreachable(self) -> str: ...


class FakeHarness:
    def __init__(self) -> None:
        self.fake = FakeWebhookSender(excerpt_bytes=EXCERPT)
        self.sender: WebhookSender = self.fake

    async def url(self, path: str, reply: Reply) -> str:
        url = f"http://hooks.fake.test{path}"
        if reply.hang:
            self.fake.script(url, Answer.timeout(int(TIMEOUT_S * 1000)))
        else:
            body = b"x" * FLOOD_BYTES if reply.flood else reply.body
            self.fake.script(url, Answer(reply.status, body, reply.headers.get("Retry-After")))
        return url

    def received(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return [(r.headers, r.body) for r in self.fake.sent_to(f"http://hooks.fake.test{path}")]

    def unreachable(self) -> str:
        url = "http://gone.fake.test/hook"
        self.fake.script(url, Answer.connection_error())
        return url


class AiohttpHarness:
    def __init__(self, base: str, sender: AiohttpWebhookSender) -> None:
        self.base = base
        self.sender: WebhookSender = sender
        self.replies: dict[str, Reply] = {}
        self.seen: dict[str, list[tuple[dict[str, str], bytes]]] = {}

    async def url(self, path: str, reply: Reply) -> str:
        self.replies[path] = reply
        return f"{self.base}{path}"

    def received(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        return self.seen.get(path, [])

    def unreachable(self) -> str:
        with socket.socket() as s:  # bound then released: nothing listens there
            s.bind(("127.0.0.1", 0))
            return f"http://127.0.0.1:{s.getsockname()[1]}/hook"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.setdefault(request.path, []).append((dict(request.headers),
                                                       await request.read()))
        reply = self.replies.get(request.path, Reply(404, b"not scripted"))
        if reply.hang:
            await asyncio.Event().wait()
        if not reply.flood:
            return web.Response(status=reply.status, body=reply.body, headers=reply.headers)
        resp = web.StreamResponse(status=reply.status, headers=reply.headers)
        await resp.prepare(request)
        chunk = b"x" * 65536
        try:
            for _ in range(FLOOD_BYTES // len(chunk)):
                await resp.write(chunk)
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp


@pytest.fixture(params=["fake", "aiohttp"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    if request.param == "fake":
        yield FakeHarness()
        return
    sender = AiohttpWebhookSender(timeout_seconds=TIMEOUT_S, excerpt_bytes=EXCERPT,
                                  max_response_bytes=64 * 1024,
                                  policy=TargetPolicy(allowlist=["127.0.0.1/32"]))
    app = web.Application()
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    h: AiohttpHarness | None = None

    async def route(req: web.Request) -> web.StreamResponse:
        assert h is not None
        return await h.handle(req)

    app.router.add_route("*", "/{tail:.*}", route)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    h = AiohttpHarness(f"http://127.0.0.1:{runner.addresses[0][1]}", sender)
    try:
        yield h
    finally:
        await sender.close()
        await runner.cleanup()


async def test_a_delivery_arrives_intact_and_its_answer_comes_back(harness: Harness) -> None:
    url = await harness.url("/hooks/vanta", Reply(200, b"thanks"))
    result = await harness.sender.send(url, HEADERS, BODY)
    assert isinstance(result, SendResult)
    assert (result.status, result.response_excerpt, result.error, result.refused,
            result.retry_after) == (200, "thanks", None, False, None)
    assert isinstance(result.latency_ms, int) and result.latency_ms >= 0
    [(headers, body)] = harness.received("/hooks/vanta")
    assert body == BODY
    assert {k: headers.get(k) for k in HEADERS} == HEADERS


@pytest.mark.parametrize("status", [201, 202, 204, 400, 401, 404, 409, 410, 422, 429, 500,
                                    502, 503])
async def test_every_status_is_returned_as_it_came(harness: Harness, status: int) -> None:
    body = b"" if status == 204 else f"answer {status}".encode()
    url = await harness.url(f"/s{status}", Reply(status, body))
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.response_excerpt, result.error, result.refused,
            result.retry_after) == (status, body.decode(), None, False, None)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirects_are_returned_not_followed(harness: Harness, status: int) -> None:
    elsewhere = await harness.url("/stolen", Reply(200))
    url = await harness.url("/moved", Reply(status, b"moved", {"Location": elsewhere}))
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.response_excerpt) == (status, "moved")
    assert harness.received("/stolen") == []


@pytest.mark.parametrize("value", ["120", "Wed, 21 Oct 2026 07:28:00 GMT"])
@pytest.mark.parametrize("status", [429, 503])
async def test_retry_after_comes_back_verbatim(harness: Harness, status: int,
                                               value: str) -> None:
    url = await harness.url("/busy", Reply(status, b"busy", {"Retry-After": value}))
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.retry_after) == (status, value)


@pytest.mark.parametrize("body,excerpt", [("é" * 100, "é" * 50), (b"\xff\xfeok", "\ufffd\ufffdok"),
                                         (b"a" * 99 + "é".encode(), "a" * 99 + "\ufffd")],
                         ids=["utf8", "not-utf8", "cut-mid-character"])
async def test_the_excerpt_is_text_of_at_most_excerpt_bytes(
        harness: Harness, body: str | bytes, excerpt: str) -> None:
    raw = body.encode() if isinstance(body, str) else body
    url = await harness.url("/text", Reply(200, raw))
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.response_excerpt) == (200, excerpt)


async def test_a_receiver_that_never_answers_is_a_retryable_timeout(harness: Harness) -> None:
    url = await harness.url("/hang", Reply(hang=True))
    started = time.perf_counter()
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.error, result.refused, result.response_excerpt) == (
        None, "timeout", False, None)
    assert time.perf_counter() - started < TIMEOUT_S + 0.5


async def test_a_huge_answer_is_cut_to_the_excerpt(harness: Harness) -> None:
    url = await harness.url("/flood", Reply(flood=True))
    started = time.perf_counter()
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.response_excerpt, result.error) == (200, "x" * EXCERPT, None)
    assert time.perf_counter() - started < 1.0


async def test_no_connection_is_retryable_not_refused(harness: Harness) -> None:
    result = await harness.sender.send(harness.unreachable(), HEADERS, BODY)
    assert result.status is None and result.response_excerpt is None
    assert result.error and not result.refused


@pytest.mark.parametrize("url,reason", [("file:///etc/passwd", "scheme"),
                                        ("ftp://127.0.0.1/x", "scheme"),
                                        ("http://u:p@127.0.0.1:9/", "credentials")])
async def test_bad_targets_are_refused_before_anything_is_sent(
        harness: Harness, url: str, reason: str) -> None:
    result = await harness.sender.send(url, HEADERS, BODY)
    assert (result.status, result.refused, result.error) == (None, True, f"refused: {reason}")


async def test_the_fake_plays_a_script_in_order_and_can_raise() -> None:
    fake = FakeWebhookSender()
    fake.script("http://a.test/h", Answer(503, retry_after="5"), Answer.timeout(), Answer(200))
    fake.script("http://b.test/h", Answer.raises(RuntimeError("bug in the sender")))
    got = [await fake.send("http://a.test/h", HEADERS, BODY) for _ in range(4)]
    assert [(r.status, r.error) for r in got] == [(503, None), (None, "timeout"), (200, None),
                                                  (200, None)]
    assert got[0].retry_after == "5"
    with pytest.raises(RuntimeError):
        await fake.send("http://b.test/h", HEADERS, BODY)
    assert (await fake.send("http://unscripted.test/", HEADERS, BODY)).status == 200
    assert [r.url for r in fake.requests] == ["http://a.test/h"] * 4 + [
        "http://b.test/h", "http://unscripted.test/"]
