"""The webhook sender against real aiohttp servers on 127.0.0.1 (port 0).

What is proven here: policy refusals never open a connection; the connection goes to the
vetted address (no second lookup); oversized and slow answers are cut off within bounds; a
slow endpoint cannot starve deliveries to another one. What every sender does (statuses and
redirects returned as they came, Retry-After, timeouts, excerpts, refused schemes) is the
contract suite's, ``tests/contract/test_sender_contract.py``, run on this sender and the fake.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import socket
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from vanta.adapters.webhooks.sender import AiohttpWebhookSender, SendResult, VettedResolver
from vanta.adapters.webhooks.ssrf import TargetPolicy

LOOPBACK = TargetPolicy(allowlist=["127.0.0.1/32"])
HEADERS = {"Content-Type": "application/json", "X-Vanta-Signature": "sha256=abc",
           "webhook-id": "fo-1"}
BODY = b'{"symbol":"AAPL","qty":7}'

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler, ssl_context: ssl.SSLContext | None = None
                ) -> AsyncIterator[str]:
    app = web.Application()

    async def route(request: web.Request) -> web.StreamResponse:
        return await handler(request)

    app.router.add_route("*", "/{tail:.*}", route)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


class Recorder:
    """A receiver that answers 200 and remembers what it got."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []

    async def __call__(self, request: web.Request) -> web.Response:
        self.requests.append({"path": request.path, "headers": dict(request.headers),
                              "body": await request.read()})
        return web.Response(text="ok")


@asynccontextmanager
async def sender(**kw: Any) -> AsyncIterator[AiohttpWebhookSender]:
    kw.setdefault("timeout_seconds", 3.0)
    s = AiohttpWebhookSender(**kw)
    try:
        yield s
    finally:
        await s.close()


def _port(base: str) -> int:
    return int(base.rsplit(":", 1)[1])


async def test_delivery_succeeds_when_loopback_is_allowlisted() -> None:
    rec = Recorder()
    async with serve(rec) as base, sender(policy=LOOPBACK) as s:
        result = await s.send(f"{base}/hooks/vanta", HEADERS, BODY)
    assert result.status == 200 and result.error is None and not result.refused
    assert result.response_excerpt == "ok"
    [req] = rec.requests
    assert req["path"] == "/hooks/vanta" and req["body"] == BODY
    assert req["headers"]["X-Vanta-Signature"] == "sha256=abc"
    assert req["headers"]["Host"] == f"127.0.0.1:{_port(base)}"


async def test_loopback_is_refused_without_the_allowlist_and_nothing_is_sent() -> None:
    rec = Recorder()
    async with serve(rec) as base, sender(policy=TargetPolicy()) as s:
        result = await s.send(f"{base}/hooks/vanta", HEADERS, BODY)
        legacy = await s.send(f"http://2130706433:{_port(base)}/", HEADERS, BODY)
    assert result == SendResult(status=None, latency_ms=result.latency_ms,
                                response_excerpt=None, error="refused: private_address",
                                refused=True)
    assert legacy.refused and legacy.error == "refused: private_address"
    assert rec.requests == []


async def test_an_allowlisted_legacy_numeric_host_is_refused_not_retried() -> None:
    rec = Recorder()
    async with serve(rec) as base, sender(policy=LOOPBACK) as s:
        result = await s.send(f"http://2130706433:{_port(base)}/", HEADERS, BODY)
    # vetted as 127.0.0.1, but aiohttp refuses non-canonical IPv4 spellings outright
    assert (result.refused, result.error) == (True, "refused: invalid_url")
    assert rec.requests == []


async def test_no_policy_allows_everything_for_the_embedded_demo() -> None:
    rec = Recorder()
    async with serve(rec) as base, sender() as s:
        result = await s.send(f"{base}/x", HEADERS, BODY)
    assert result.status == 200 and len(rec.requests) == 1


async def test_bad_scheme_and_credentials_are_refused_even_without_a_policy() -> None:
    async with sender() as s:
        scheme = await s.send("file:///etc/passwd", HEADERS, BODY)
        creds = await s.send("http://u:p@127.0.0.1:9/", HEADERS, BODY)
    assert (scheme.refused, scheme.error) == (True, "refused: scheme")
    assert (creds.refused, creds.error) == (True, "refused: credentials")


async def test_connection_goes_to_the_vetted_address_without_a_second_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rebinding DNS answers 127.0.0.1 once and an unreachable address afterwards."""
    lookups: list[str] = []
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def rebinding(host: str, port: Any, **kw: Any) -> Any:
        if host.rstrip(".") != "hooks.test":
            return await real(host, port, **kw)
        lookups.append(host)
        addr = "127.0.0.1" if len(lookups) == 1 else "203.0.113.9"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port))]

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    rec = Recorder()
    async with serve(rec) as base, sender(policy=LOOPBACK, timeout_seconds=2.0) as s:
        port = _port(base)
        first = await s.send(f"http://hooks.test:{port}/a", HEADERS, BODY)
        assert lookups == ["hooks.test"]  # aiohttp did not look the name up again
        second = await s.send(f"http://hooks.test:{port}/b", HEADERS, BODY)
    assert first.status == 200, first
    [req] = rec.requests
    assert req["headers"]["Host"] == f"hooks.test:{port}"  # the name, not the address
    # every send vets afresh: the rebound answer is refused, the pooled connection unused
    assert (second.refused, second.error) == (True, "refused: private_address")
    assert lookups == ["hooks.test", "hooks.test"]


def _tls_pair(tmp: Any, cert_name: str) -> tuple[ssl.SSLContext, ssl.SSLContext, list[str]]:
    """A throwaway CA, a server certificate for ``cert_name``; (server, client, SNI seen)."""
    now = dt.datetime.now(dt.UTC)

    def cert(subject: str, key: Any, issuer: str, issuer_key: Any, ca: bool) -> x509.Certificate:
        b = (x509.CertificateBuilder()
             .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
             .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(minutes=1))
             .not_valid_after(now + dt.timedelta(hours=1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if not ca:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]),
                                critical=False)
        return b.sign(issuer_key, hashes.SHA256())

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(
        ec.SECP256R1())
    ca = cert("test ca", ca_key, "test ca", ca_key, True)
    leaf = cert(cert_name, leaf_key, "test ca", ca_key, False)
    pem = serialization.Encoding.PEM
    (tmp / "leaf.pem").write_bytes(leaf.public_bytes(pem))
    (tmp / "leaf.key").write_bytes(leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(tmp / "leaf.pem", tmp / "leaf.key")
    sni: list[str] = []
    server.sni_callback = lambda _sock, name, _ctx: sni.append(name) and None
    client = ssl.create_default_context(cadata=ca.public_bytes(pem).decode())
    return server, client, sni


@pytest.mark.parametrize("cert_name", ["hooks.test", "someone-else.test"])
async def test_tls_sni_and_certificate_check_use_the_hostname_not_the_address(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, cert_name: str,
) -> None:
    server_ctx, client_ctx, sni = _tls_pair(tmp_path, cert_name)
    loop = asyncio.get_running_loop()
    real = loop.getaddrinfo

    async def dns(host: str, port: Any, **kw: Any) -> Any:
        if host == "hooks.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await real(host, port, **kw)

    monkeypatch.setattr(loop, "getaddrinfo", dns)
    rec = Recorder()
    async with serve(rec, server_ctx) as base, sender(
            policy=TargetPolicy(allowlist=["hooks.test"]), ssl_context=client_ctx) as s:
        result = await s.send(f"https://hooks.test:{_port(base)}/hook", HEADERS, BODY)
    assert sni == ["hooks.test"]
    if cert_name == "hooks.test":
        assert result.status == 200, result
        assert rec.requests[0]["headers"]["Host"] == f"hooks.test:{_port(base)}"
    else:  # the certificate is checked against the URL's hostname and does not match it
        assert result.status is None and not result.refused, result
        assert result.error is not None and "hostname mismatch" in result.error.lower()
        assert rec.requests == []


async def test_a_refused_rebinding_answer_never_reaches_the_network(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loop = asyncio.get_running_loop()

    async def to_metadata(host: str, port: Any, **kw: Any) -> Any:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(loop, "getaddrinfo", to_metadata)
    async with sender(policy=TargetPolicy(allow_private=True)) as s:
        result = await s.send("http://innocent.example/hook", HEADERS, BODY)
    assert (result.refused, result.error) == (True, "refused: metadata_address")


async def test_temporary_dns_failure_is_retryable_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def servfail(host: str, port: Any, **kw: Any) -> Any:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", servfail)
    async with sender(policy=LOOPBACK) as s:
        result = await s.send("http://hooks.example/", HEADERS, BODY)
    assert result.status is None and not result.refused
    assert result.error is not None and result.error.startswith("unresolvable (temporary)")


async def test_resolver_fails_closed_outside_a_vetted_send() -> None:
    with pytest.raises(OSError):
        await VettedResolver().resolve("example.com", 80)




class Flood:
    """Streams 50 MB, with or without a Content-Length, and records how far it got."""

    SIZE = 50 * 1024 * 1024

    def __init__(self, declare_length: bool) -> None:
        self.declare_length = declare_length
        self.written = 0
        self.finished = False
        self.done = asyncio.Event()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        if self.declare_length:
            resp.content_length = self.SIZE
        await resp.prepare(request)
        chunk = b"x" * 65536
        try:
            while self.written < self.SIZE:
                await resp.write(chunk)
                self.written += len(chunk)
            await resp.write_eof()
            self.finished = True
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            self.done.set()
        return resp


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content-length"])
async def test_a_huge_answer_is_cut_off_after_the_cap_quickly(declare_length: bool) -> None:
    flood = Flood(declare_length)
    async with serve(flood) as base, sender(policy=LOOPBACK, excerpt_bytes=100,
                                             max_response_bytes=64 * 1024) as s:
        started = time.perf_counter()
        result = await s.send(f"{base}/", HEADERS, BODY)
        elapsed = time.perf_counter() - started
        await asyncio.wait_for(flood.done.wait(), 2.0)  # the server saw the connection drop
    assert result.status == 200 and result.response_excerpt == "x" * 100
    assert elapsed < 1.0
    assert not flood.finished and flood.written < Flood.SIZE // 2


async def test_a_receiver_that_never_answers_times_out_within_the_bound() -> None:
    async def hang(request: web.Request) -> web.Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with serve(hang) as base, sender(policy=LOOPBACK, timeout_seconds=0.5) as s:
        started = time.perf_counter()
        result = await s.send(f"{base}/", HEADERS, BODY)
        elapsed = time.perf_counter() - started
    assert (result.status, result.error, result.refused) == (None, "timeout", False)
    assert 0.45 <= elapsed < 1.0


async def test_a_receiver_that_trickles_its_body_times_out_within_the_bound() -> None:
    async def trickle(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        await resp.prepare(request)
        while True:
            await resp.write(b".")
            await asyncio.sleep(0.05)

    async with serve(trickle) as base, sender(policy=LOOPBACK, timeout_seconds=0.5,
                                               max_response_bytes=1 << 20) as s:
        started = time.perf_counter()
        result = await s.send(f"{base}/", HEADERS, BODY)
        elapsed = time.perf_counter() - started
    assert (result.status, result.error) == (None, "timeout")
    assert elapsed < 1.0


class Slow:
    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def __call__(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            return web.Response(text="slow")
        finally:
            self.in_flight -= 1


async def _race(s: AiohttpWebhookSender, slow_url: str, fast_url: str
                ) -> tuple[list[float], list[float], list[SendResult]]:
    """4 deliveries to the slow endpoint first, then 4 to the fast one; finish times."""
    started = time.perf_counter()
    slow_done: list[float] = []
    fast_done: list[float] = []
    results: list[SendResult] = []

    async def one(url: str, done: list[float]) -> None:
        results.append(await s.send(url, HEADERS, BODY))
        done.append(time.perf_counter() - started)

    slow = [asyncio.create_task(one(slow_url, slow_done)) for _ in range(4)]
    await asyncio.sleep(0.1)  # the slow deliveries are connected and waiting
    fast = [asyncio.create_task(one(fast_url, fast_done)) for _ in range(4)]
    await asyncio.gather(*slow, *fast)
    return slow_done, fast_done, results


async def test_a_slow_endpoint_does_not_delay_another_endpoint() -> None:
    slow, fast = Slow(1.0), Recorder()
    async with serve(slow) as slow_base, serve(fast) as fast_base, \
            sender(policy=LOOPBACK, connections=4, per_endpoint_limit=2,
                   timeout_seconds=5.0) as s:
        slow_done, fast_done, results = await _race(s, f"{slow_base}/", f"{fast_base}/")
    assert all(r.status == 200 for r in results), results
    assert slow.max_in_flight == 2  # the slow endpoint never held more than its 2 slots
    assert max(fast_done) < 0.6  # not behind the slow ones (which need ~1 s and ~2 s)
    assert min(slow_done) >= 0.9 and max(slow_done) >= 1.9


async def test_without_a_per_endpoint_limit_the_slow_endpoint_would_starve_the_other() -> None:
    """Control for the test above: the same race with the limit out of the way."""
    slow, fast = Slow(1.0), Recorder()
    async with serve(slow) as slow_base, serve(fast) as fast_base, \
            sender(policy=LOOPBACK, connections=4, per_endpoint_limit=100,
                   timeout_seconds=5.0) as s:
        _, fast_done, _ = await _race(s, f"{slow_base}/", f"{fast_base}/")
    assert min(fast_done) >= 0.8


async def test_waiting_for_an_endpoint_slot_counts_against_the_timeout() -> None:
    slow = Slow(5.0)
    async with serve(slow) as base, sender(policy=LOOPBACK, per_endpoint_limit=1,
                                            timeout_seconds=0.5) as s:
        started = time.perf_counter()
        first, second = await asyncio.gather(s.send(f"{base}/", HEADERS, BODY),
                                             s.send(f"{base}/", HEADERS, BODY))
        elapsed = time.perf_counter() - started
    assert first.error == "timeout"
    # Usually the second times out still waiting; on a loaded machine it may get the slot
    # just as the first gives up and time out on the wire (or while resolving, or
    # connecting). Either way its whole budget was
    # the one 0.5 s: had waiting not counted, the pair would take a full second.
    assert second.error is not None and second.error.startswith("timeout")
    assert slow.max_in_flight == 1 and elapsed < 1.0
