"""The one place that decides a request's client address (rate limits, request log, audit).

The address is the TCP peer's, unless that peer is one of the trusted proxies
(``VANTA_TRUSTED_PROXIES``, CIDRs or single addresses; empty by default). Only then is
``X-Forwarded-For`` read, from the right: each proxy appends the address it received the
request from, so hops are skipped while they are trusted proxies and the first untrusted one
is the client. Entries to its left were written by the client and are never believed. The
``Forwarded`` header (RFC 7239) and ``X-Real-IP`` are not read.

:class:`ClientAddressMiddleware`, the outermost layer, puts the decision into the ASGI scope's
``client`` (the peer is kept in ``scope["state"]["peer"]``), so everything inside it
(``request.client``, the rate limiter, the request log) sees the same address. ``vanta serve``
starts uvicorn with its own proxy-header handling off, so nothing else rewrites it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ClientAddressMiddleware", "TrustedProxies", "parse_networks"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_HEADER = b"x-forwarded-for"


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """CIDRs (``10.0.0.0/8``) or single addresses; a malformed entry is a ValueError."""
    networks: list[Network] = []
    for entry in entries:
        text = entry.strip()
        if text:
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
            except ValueError:
                raise ValueError(f"not an IP address or CIDR: {text!r}") from None
    return tuple(networks)


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("[") and "]" in text:  # [v6]:port
        text = text[1:text.index("]")]
    elif text.count(":") == 1:  # v4:port
        text = text.split(":", 1)[0]
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


@dataclass(frozen=True, slots=True)
class TrustedProxies:
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> TrustedProxies:
        return cls(parse_networks(entries))

    def trusts(self, addr: Address) -> bool:
        return any(addr.version == n.version and addr in n for n in self.networks)

    def client(self, peer: str | None, forwarded_for: Iterable[bytes]) -> str | None:
        """The client's address, given the TCP peer and the X-Forwarded-For header lines."""
        if peer is None or not self.networks:
            return peer
        nearest = _address(peer)
        if nearest is None or not self.trusts(nearest):
            return peer
        hops = ",".join(v.decode("latin-1") for v in forwarded_for).split(",")
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:
                break  # a trusted proxy passed on garbage: stop at that proxy
            nearest = addr
            if not self.trusts(addr):
                break
        return str(nearest)


class ClientAddressMiddleware:
    """Add it last (outermost)."""

    def __init__(self, app: ASGIApp, *, trusted: TrustedProxies) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted.networks:
            client = scope.get("client")
            peer = str(client[0]) if client else None
            lines = [v for k, v in scope.get("headers") or () if k == _HEADER]
            address = self.trusted.client(peer, lines)
            if address != peer and address is not None:
                scope.setdefault("state", {})["peer"] = client
                scope["client"] = (address, 0)
        await self.app(scope, receive, send)
