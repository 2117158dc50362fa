"""HTTP delivery of a signed body with aiohttp: bounded time, no redirects, bounded reads."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import aiohttp


@dataclass(frozen=True, slots=True)
class SendResult:
    status: int | None
    latency_ms: int
    response_excerpt: str | None
    error: str | None
    retry_after: str | None = None


class AiohttpWebhookSender:
    def __init__(self, *, timeout_seconds: float, excerpt_bytes: int = 1024,
                 connections: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._excerpt = excerpt_bytes
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=self._connections),
                auto_decompress=False,
            )
        return self._session

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> SendResult:
        session = await self._get_session()
        start = time.perf_counter()
        try:
            async with session.post(url, data=body, headers=headers,
                                    allow_redirects=False) as resp:
                chunk = await resp.content.read(self._excerpt)
                return SendResult(
                    status=resp.status, latency_ms=_ms(start),
                    response_excerpt=chunk.decode("utf-8", "replace"), error=None,
                    retry_after=resp.headers.get("Retry-After"))
        except TimeoutError:
            return SendResult(None, _ms(start), None, "timeout")
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as e:
            return SendResult(None, _ms(start), None, f"{type(e).__name__}: {e}"[:500])

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


def _ms(start: float) -> int:
    return int((time.perf_counter() - start) * 1000)
