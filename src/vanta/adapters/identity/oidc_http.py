"""HTTP helpers for talking to an OpenID Connect provider: which URLs are acceptable, and
bounded JSON reads. Shared by :mod:`.oidc` and :mod:`.token_exchange`."""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import httpx

MAX_BODY = 1 << 20  # discovery documents and key sets are a few KiB


class OidcError(Exception):
    """Discovery or JWKS retrieval failed, or the provider's answer is unacceptable."""


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: object, what: str, *, allow_http: bool = False) -> str:
    """Return ``url`` if it is an absolute https URL (http only for loopback/allow_http)."""
    if not isinstance(url, str) or not url:
        raise OidcError(f"{what} is missing or not a string")
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError as e:
        raise OidcError(f"{what} {url!r} is not a valid URL: {e}") from None
    if parts.scheme not in ("https", "http") or not host:
        raise OidcError(f"{what} {url!r} must be an absolute http(s) URL")
    if parts.username is not None or parts.password is not None:
        raise OidcError(f"{what} {url!r} must not embed credentials")
    if parts.scheme == "http" and not (allow_http or _is_loopback(host)):
        raise OidcError(f"{what} {url!r} must use https")
    return url


async def read_json(response: httpx.Response, what: str, *, limit: int = MAX_BODY) -> Any:
    """Read at most ``limit`` bytes of a streamed response and parse them as JSON."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise OidcError(f"{what}: response larger than {limit} bytes")
    try:
        return json.loads(body)
    except ValueError as e:
        raise OidcError(f"{what}: response is not JSON ({e})") from None


async def get_json(http: httpx.AsyncClient, url: str, what: str, *, timeout: float) -> Any:
    """GET ``url`` (no redirects) and read its JSON answer, size-capped; any failure is an
    :class:`OidcError` naming ``what``."""
    try:
        async with http.stream("GET", url, headers={"Accept": "application/json"},
                               timeout=timeout, follow_redirects=False) as response:
            if response.status_code != 200:
                raise OidcError(f"{what} {url}: HTTP {response.status_code}")
            return await read_json(response, f"{what} {url}")
    except httpx.HTTPError as e:
        raise OidcError(f"{what} {url}: {type(e).__name__}: {e}") from None
