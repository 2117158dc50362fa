"""The client address behind (untrusted and trusted) proxies, and the header-size limit, both
in-process and against a real uvicorn server on loopback started the way `vanta serve` does."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import Api
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.api.client_address import TrustedProxies
from vanta.entrypoints.api.header_limit import MAX_HEADER_BYTES
from vanta.entrypoints.cli.serving import bind, serve

# --- which address is the client's ----------------------------------------------------------

PROXIES = TrustedProxies.parse(["127.0.0.1", "10.0.0.0/8"])


@pytest.mark.parametrize(("peer", "xff", "expected"), [
    ("203.0.113.9", [b"1.1.1.1"], "203.0.113.9"),           # untrusted peer: header ignored
    ("127.0.0.1", [], "127.0.0.1"),                         # trusted peer, no header
    ("127.0.0.1", [b"198.51.100.7"], "198.51.100.7"),       # HAProxy on loopback
    ("127.0.0.1", [b"6.6.6.6, 198.51.100.7"], "198.51.100.7"),  # client-written hop ignored
    ("127.0.0.1", [b"6.6.6.6", b"198.51.100.7"], "198.51.100.7"),  # two header lines
    ("127.0.0.1", [b"198.51.100.7, 10.1.1.1"], "198.51.100.7"),  # two trusted proxies
    ("127.0.0.1", [b"10.2.2.2, 10.1.1.1"], "10.2.2.2"),      # every hop trusted: the last
    ("127.0.0.1", [b"garbage"], "127.0.0.1"),                # a proxy passed on garbage
    ("127.0.0.1", [b"198.51.100.7:4711"], "198.51.100.7"),
    ("127.0.0.1", [b"[2001:db8::1]:4711"], "2001:db8::1"),
    ("::ffff:127.0.0.1", [b"198.51.100.7"], "198.51.100.7"),
])
def test_right_most_untrusted_hop(peer: str, xff: list[bytes], expected: str) -> None:
    assert PROXIES.client(peer, xff) == expected


def test_nothing_is_trusted_by_default() -> None:
    assert TrustedProxies.parse(Settings().trusted_proxies).client(
        "127.0.0.1", [b"1.1.1.1"]) == "127.0.0.1"


def test_settings_take_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VANTA_TRUSTED_PROXIES", "127.0.0.1, 10.0.0.0/8")
    assert Settings().trusted_proxies == ["127.0.0.1", "10.0.0.0/8"]
    monkeypatch.setenv("VANTA_TRUSTED_PROXIES", '["::1"]')
    assert Settings().trusted_proxies == ["::1"]
    monkeypatch.setenv("VANTA_TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings()


def test_trusting_every_forwarded_for_is_refused() -> None:
    with pytest.raises(ValueError, match="VANTA_TRUSTED_PROXIES"):
        Settings(trust_forwarded_for=True)


# --- a real server, as `vanta serve` runs it --------------------------------------------------

@contextlib.asynccontextmanager
async def served(tmp_path: Path, **settings: Any) -> AsyncIterator[tuple[str, Any]]:
    c = build(Settings(data_dir=tmp_path, **settings))
    await c.migrate()
    sock = bind("127.0.0.1", 0)
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(c, sock, run_dispatcher=False, ready=ready, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), 30)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", c
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def _get_many(url: str, n: int, headers: Any) -> list[int]:
    with httpx.Client(timeout=10) as http:
        return [http.get(url, headers=headers(i)).status_code for i in range(n)]


async def test_rotating_forwarded_for_from_loopback_does_not_escape_the_limit(
        tmp_path: Path) -> None:
    async with served(tmp_path) as (base, _):  # default: 60/min, burst 20, nothing trusted
        codes = await asyncio.to_thread(_get_many, f"{base}/v1/vaults", 100,
                                        lambda i: {"X-Forwarded-For": f"198.51.100.{i}"})
    assert codes.count(429) >= 75, codes
    assert set(codes) <= {401, 429}


async def test_behind_a_trusted_proxy_each_client_has_its_own_bucket(tmp_path: Path) -> None:
    async with served(tmp_path, trusted_proxies=["127.0.0.1"], rate_limit_burst=2) as (base, c):
        codes = await asyncio.to_thread(_get_many, f"{base}/v1/vaults", 6,
                                        lambda i: {"X-Forwarded-For": f"198.51.100.{i}"})
        same = await asyncio.to_thread(_get_many, f"{base}/v1/vaults", 3,
                                       lambda i: {"X-Forwarded-For": f"1.1.1.{i}, 203.0.113.5"})
    async with c.uow() as uow:  # the server flushed its request audit when it stopped
        ips = [e.payload["ip"] for e in await uow.audit.all() if e.entity == "request"]
    assert codes == [401] * 6  # six clients, one request each
    assert same == [401, 401, 429]  # the hop the proxy appended counts, not the client's
    assert ips == [f"198.51.100.{i}" for i in range(6)] + ["203.0.113.5"] * 3


def _raw_request(port: int, head: bytes) -> bytes:
    """Send a request head with a raw socket; read the whole answer (or what came before a
    reset)."""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as s:
        with contextlib.suppress(OSError):  # the answer may already be there
            s.sendall(head)
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := s.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.parametrize("size", [100 * 1024, 1024 * 1024])
async def test_huge_tokens_get_a_problem_from_a_real_server(tmp_path: Path, size: int) -> None:
    async with served(tmp_path) as (base, _):
        r = await asyncio.to_thread(
            lambda: httpx.get(f"{base}/v1/vaults", timeout=15,
                              headers={"Authorization": "Bearer " + "a" * size}))
        assert r.status_code == 431
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "request_header_too_large"
        assert r.json()["max_header_bytes"] == MAX_HEADER_BYTES
        ok = await asyncio.to_thread(lambda: httpx.get(f"{base}/healthz", timeout=5))
        assert ok.status_code == 200  # the server is fine afterwards


async def test_a_malformed_request_keeps_its_400(tmp_path: Path) -> None:
    async with served(tmp_path) as (base, _):
        port = int(base.rsplit(":", 1)[1])
        answer = await asyncio.to_thread(_raw_request, port, b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 400")


async def test_huge_headers_in_process(api: Api) -> None:
    r = await api.client.get("/v1/vaults",
                             headers={"Authorization": "Bearer " + "a" * (100 * 1024)})
    assert r.status_code == 431 and r.json()["code"] == "request_header_too_large"
    assert r.headers["content-type"] == "application/problem+json"
    many = {f"x-pad-{i}": "b" * 100 for i in range(200)}  # 20 KiB in small headers
    r = await api.client.get("/v1/vaults", headers={**api.auth(), **many})
    assert r.status_code == 431
    r = await api.client.get("/v1/vaults", headers=api.auth())
    assert r.status_code == 200
