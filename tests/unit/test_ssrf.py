"""SSRF guard: which webhook URLs we connect to, and why the others are refused.

Names are answered by a fake ``getaddrinfo`` installed on the running loop (no real DNS);
numeric hosts, including legacy forms such as ``2130706433`` and ``0x7f.0.0.1``, go through
the real ``getaddrinfo`` in numeric mode, which is how they would be resolved in production.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any

import pytest

from vanta.adapters.webhooks.ssrf import (
    TargetPolicy,
    TargetRefused,
    classify_address,
    resolve_and_vet,
    resolve_unvetted,
)

FAKE_DNS: dict[str, list[str]] = {
    "public.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                       "93.184.215.14"],
    "v6only.example": ["2606:4700:4700::1111"],
    "localhost": ["127.0.0.1", "::1"],
    "internal.example": ["10.0.0.5"],
    "mixed.example": ["93.184.215.14", "192.168.1.10"],  # one bad address is enough
    "cgnat.example": ["100.64.1.1"],
    "ula.example": ["fd12:3456::1"],
    "mapped-loopback.example": ["::ffff:127.0.0.1"],
    "rebind-metadata.example": ["169.254.169.254"],
    "hooks.internal": ["10.1.2.3"],
    "other.internal": ["10.1.2.4"],
    "metadata.google.internal": ["169.254.169.254"],
}


class FakeDns:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def getaddrinfo(self, host: str, port: Any, *, family: int = 0, type: int = 0,
                          proto: int = 0, flags: int = 0) -> list[Any]:
        self.calls.append(host)
        name = host.rstrip(".").lower()
        if name == "flaky.example":
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if name in FAKE_DNS:
            out = []
            for addr in FAKE_DNS[name]:
                if ":" in addr:
                    out.append((socket.AF_INET6, socket.SOCK_STREAM, 6, "", (addr, port, 0, 0)))
                else:
                    out.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (addr, port)))
            return out
        try:  # numeric forms only: never touches the network
            return socket.getaddrinfo(host, port, family, type, proto,
                                      flags | socket.AI_NUMERICHOST)
        except socket.gaierror:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None


@pytest.fixture
async def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDns:
    fake = FakeDns()
    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fake.getaddrinfo)
    return fake


DEFAULT = TargetPolicy()

# (url, reason or None when allowed)
DEFAULT_TABLE: list[tuple[str, str | None]] = [
    # public targets
    ("http://public.example/hooks/vanta", None),
    ("https://public.example:8443/x?y=1", None),
    ("https://PUBLIC.example./x", None),
    ("http://93.184.215.14/", None),
    ("http://v6only.example/", None),
    ("http://[2606:4700:4700::1111]:8080/", None),
    ("http://[::ffff:8.8.8.8]/", None),  # IPv4-mapped public is public
    # scheme / credentials / shape
    ("ftp://public.example/", "scheme"),
    ("file:///etc/passwd", "scheme"),
    ("gopher://public.example:70/_x", "scheme"),
    ("ws://public.example/", "scheme"),
    ("javascript:alert(1)", "scheme"),
    ("//public.example/hook", "scheme"),
    ("public.example/hook", "scheme"),
    ("http://user:pw@public.example/", "credentials"),
    ("http://user@public.example/", "credentials"),
    ("http://:pw@public.example/", "credentials"),
    ("http:///no-host", "invalid_url"),
    ("http://public.example:99999/", "invalid_url"),
    ("http://evil.example\\@127.0.0.1/", "invalid_url"),
    # names that do not resolve
    ("http://nope.invalid/", "unresolvable"),
    ("http://%31%32%37.0.0.1/", "unresolvable"),
    # IPv4 loopback, also in legacy numeric spellings getaddrinfo accepts
    ("http://127.0.0.1/", "private_address"),
    ("http://127.0.0.2:9000/", "private_address"),
    ("http://localhost:8080/", "private_address"),
    ("http://2130706433/", "private_address"),
    ("http://0x7f.0.0.1/", "private_address"),
    ("http://0x7f000001/", "private_address"),
    ("http://017700000001/", "private_address"),
    ("http://0177.0.0.1/", "private_address"),
    ("http://127.1/", "private_address"),
    # unspecified, private, CGNAT, link-local, multicast, reserved, broadcast
    ("http://0.0.0.0/", "private_address"),
    ("http://0/", "private_address"),
    ("http://10.0.0.1/", "private_address"),
    ("http://172.16.5.4/", "private_address"),
    ("http://192.168.0.1/", "private_address"),
    ("http://100.64.0.1/", "private_address"),
    ("http://169.254.1.1/", "private_address"),
    ("http://224.0.0.1/", "private_address"),
    ("http://240.0.0.1/", "private_address"),
    ("http://255.255.255.255/", "private_address"),
    ("http://192.0.2.10/", "private_address"),  # TEST-NET: not globally routable
    # IPv6
    ("http://[::1]/", "private_address"),
    ("http://[::]/", "private_address"),
    ("http://[fe80::1]/", "private_address"),
    ("http://[fc00::1]/", "private_address"),
    ("http://[fd12:3456::1]/", "private_address"),
    ("http://[fec0::1]/", "private_address"),
    ("http://[ff02::1]/", "private_address"),
    ("http://[ff0e::1]/", "private_address"),
    ("http://[::ffff:127.0.0.1]/", "private_address"),
    ("http://[::ffff:7f00:1]/", "private_address"),
    ("http://[::ffff:10.0.0.1]/", "private_address"),
    ("http://[::ffff:100.64.0.1]/", "private_address"),
    ("http://[::127.0.0.1]/", "private_address"),  # deprecated IPv4-compatible
    ("http://[64:ff9b::a00:1]/", "private_address"),  # NAT64 of 10.0.0.1
    ("http://[2002:7f00:1::1]/", "private_address"),  # 6to4 of 127.0.0.1
    # names resolving to non-public addresses
    ("http://internal.example/", "private_address"),
    ("http://mixed.example/", "private_address"),
    ("http://cgnat.example/", "private_address"),
    ("http://ula.example/", "private_address"),
    ("http://mapped-loopback.example/", "private_address"),
    # metadata services, by address and by name
    ("http://169.254.169.254/latest/meta-data/", "metadata_address"),
    ("http://[::ffff:169.254.169.254]/", "metadata_address"),
    ("http://[::ffff:a9fe:a9fe]/", "metadata_address"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "metadata_address"),
    ("http://169.254.170.2/v2/credentials", "metadata_address"),
    ("http://100.100.100.200/latest/meta-data/", "metadata_address"),
    ("http://2852039166/", "metadata_address"),  # 169.254.169.254 as one number
    ("http://rebind-metadata.example/", "metadata_address"),
    ("http://metadata.google.internal/computeMetadata/v1/", "metadata_address"),
    ("http://METADATA.GOOGLE.INTERNAL./computeMetadata/v1/", "metadata_address"),
    ("http://metadata.goog/", "metadata_address"),
    ("http://metadata/", "metadata_address"),
    ("http://instance-data.ec2.internal/", "metadata_address"),
]


async def _verdict(url: str, policy: TargetPolicy) -> str | None:
    try:
        await resolve_and_vet(url, policy)
    except TargetRefused as e:
        return e.reason
    return None


@pytest.mark.parametrize(("url", "reason"), DEFAULT_TABLE, ids=[u for u, _ in DEFAULT_TABLE])
async def test_default_policy(dns: FakeDns, url: str, reason: str | None) -> None:
    assert await _verdict(url, DEFAULT) == reason


LOOPBACK = TargetPolicy(allowlist=["127.0.0.1/32"])
LOOPBACK_BOTH = TargetPolicy(allowlist=["127.0.0.0/8", "::1"])
BY_NAME = TargetPolicy(allowlist=["HOOKS.internal."])
BY_CIDR = TargetPolicy(allowlist=["10.1.0.0/16"])
PRIVATE_OK = TargetPolicy(allow_private=True)
METADATA_CIDR = TargetPolicy(allowlist=["169.254.169.254/32"])
METADATA_NAME = TargetPolicy(allowlist=["metadata.google.internal"])
METADATA_BOTH = TargetPolicy(allowlist=["metadata.google.internal", "169.254.169.254/32"])

POLICY_TABLE: list[tuple[str, TargetPolicy, str | None]] = [
    ("http://127.0.0.1:8080/hook", LOOPBACK, None),
    ("http://2130706433/", LOOPBACK, None),
    ("http://0x7f.0.0.1/", LOOPBACK, None),
    ("http://[::ffff:127.0.0.1]/", LOOPBACK, None),  # the mapped form is the same address
    ("http://127.0.0.2/", LOOPBACK, "private_address"),
    ("http://localhost/", LOOPBACK, "private_address"),  # ::1 is not allowlisted
    ("http://10.0.0.1/", LOOPBACK, "private_address"),
    ("http://localhost/", LOOPBACK_BOTH, None),
    ("http://[::1]:9/", LOOPBACK_BOTH, None),
    ("http://hooks.internal/", BY_NAME, None),
    ("http://Hooks.Internal./", BY_NAME, None),
    ("http://other.internal/", BY_NAME, "private_address"),
    ("http://10.1.2.3/", BY_NAME, "private_address"),  # the name is allowed, not its address
    ("http://hooks.internal/", BY_CIDR, None),
    ("http://other.internal/", BY_CIDR, None),
    ("http://internal.example/", BY_CIDR, "private_address"),
    ("http://user:pw@hooks.internal/", BY_NAME, "credentials"),
    ("http://10.0.0.1/", PRIVATE_OK, None),
    ("http://localhost:8080/", PRIVATE_OK, None),
    ("http://[fd12:3456::1]/", PRIVATE_OK, None),
    ("http://100.64.0.1/", PRIVATE_OK, None),
    ("http://169.254.169.254/", PRIVATE_OK, "metadata_address"),
    ("http://[::ffff:169.254.169.254]/", PRIVATE_OK, "metadata_address"),
    ("http://rebind-metadata.example/", PRIVATE_OK, "metadata_address"),
    ("http://metadata.google.internal/", PRIVATE_OK, "metadata_address"),
    ("ftp://10.0.0.1/", PRIVATE_OK, "scheme"),
    ("http://169.254.169.254/", METADATA_CIDR, None),
    ("http://metadata.google.internal/", METADATA_CIDR, "metadata_address"),
    ("http://metadata.google.internal/", METADATA_NAME, "metadata_address"),  # needs the CIDR
    ("http://metadata.google.internal/", METADATA_BOTH, None),
    ("http://rebind-metadata.example/", TargetPolicy(allowlist=["rebind-metadata.example"]),
     "metadata_address"),
]


@pytest.mark.parametrize(("url", "policy", "reason"), POLICY_TABLE,
                         ids=[f"{u}|{p.allow_private}|{','.join(p.allowlist)}"
                              for u, p, _ in POLICY_TABLE])
async def test_policy(dns: FakeDns, url: str, policy: TargetPolicy, reason: str | None) -> None:
    assert await _verdict(url, policy) == reason


async def test_vetted_target_carries_every_address_once(dns: FakeDns) -> None:
    t = await resolve_and_vet("https://public.example:8443/hook", DEFAULT)
    assert (t.scheme, t.host, t.port) == ("https", "public.example", 8443)
    assert t.addresses == ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
    assert dns.calls == ["public.example"]  # resolved exactly once


async def test_default_ports_and_numeric_hosts_resolve_to_what_they_mean(dns: FakeDns) -> None:
    t = await resolve_and_vet("http://0x7f.0.0.1/", LOOPBACK)
    assert (t.host, t.port, t.addresses) == ("0x7f.0.0.1", 80, ("127.0.0.1",))
    t = await resolve_and_vet("https://[::ffff:7f00:1]/", LOOPBACK)
    assert (t.port, t.addresses) == (443, ("::ffff:127.0.0.1",))


async def test_canonical_address_literals_need_no_lookup_but_are_still_vetted(
    dns: FakeDns,
) -> None:
    t = await resolve_and_vet("http://127.0.0.1:8080/h", LOOPBACK)
    assert t.addresses == ("127.0.0.1",)
    assert (await resolve_and_vet("http://[::1]/h", PRIVATE_OK)).addresses == ("::1",)
    for url in ("http://127.0.0.1/", "http://[::1]/", "http://10.0.0.1/"):
        with pytest.raises(TargetRefused) as e:
            await resolve_and_vet(url, DEFAULT)
        assert e.value.reason == "private_address"
    assert dns.calls == []
    # other spellings of an address still go through the resolver
    await resolve_and_vet("http://2130706433/", LOOPBACK)
    await resolve_and_vet("http://[::ffff:7f00:1]/", LOOPBACK)
    assert dns.calls == ["2130706433", "::ffff:7f00:1"]


async def test_metadata_names_are_refused_before_any_lookup(dns: FakeDns) -> None:
    with pytest.raises(TargetRefused) as e:
        await resolve_and_vet("http://metadata.google.internal/", PRIVATE_OK)
    assert e.value.reason == "metadata_address"
    assert dns.calls == []


async def test_scheme_and_credentials_are_refused_before_any_lookup(dns: FakeDns) -> None:
    for url in ("file:///etc/passwd", "http://u:p@public.example/"):
        with pytest.raises(TargetRefused):
            await resolve_and_vet(url, DEFAULT)
    assert dns.calls == []


async def test_missing_name_is_final_but_resolver_trouble_is_temporary(dns: FakeDns) -> None:
    with pytest.raises(TargetRefused) as missing:
        await resolve_and_vet("http://nope.invalid/", DEFAULT)
    with pytest.raises(TargetRefused) as flaky:
        await resolve_and_vet("http://flaky.example/", DEFAULT)
    assert (missing.value.reason, missing.value.temporary) == ("unresolvable", False)
    assert (flaky.value.reason, flaky.value.temporary) == ("unresolvable", True)


async def test_unvetted_resolution_allows_any_address_but_not_any_url(dns: FakeDns) -> None:
    t = await resolve_unvetted("http://169.254.169.254/")
    assert t.addresses == ("169.254.169.254",)
    with pytest.raises(TargetRefused) as e:
        await resolve_unvetted("file:///etc/passwd")
    assert e.value.reason == "scheme"


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "*.internal", "", "a b", "hooks/x", "1.2.3.4/"])
def test_policy_rejects_malformed_allowlist_entries(entry: str) -> None:
    with pytest.raises(ValueError):
        TargetPolicy(allowlist=[entry])


def test_policy_rejects_a_bare_string_allowlist() -> None:
    with pytest.raises(TypeError):
        TargetPolicy(allowlist="127.0.0.1/32")


def test_policy_accepts_bare_addresses_and_non_strict_cidrs() -> None:
    p = TargetPolicy(allowlist=["10.1.2.3", "10.9.9.9/16", "fd00::/8"])
    assert p.address_allowlisted(ipaddress.ip_address("10.1.2.3"))
    assert p.address_allowlisted(ipaddress.ip_address("10.9.0.1"))
    assert p.address_allowlisted(ipaddress.ip_address("fd12::1"))
    assert not p.address_allowlisted(ipaddress.ip_address("10.1.2.4"))


@pytest.mark.parametrize(("addr", "verdict"), [
    ("8.8.8.8", None), ("2001:4860:4860::8888", None), ("::ffff:1.1.1.1", None),
    ("127.0.0.1", "private_address"), ("fe80::1%1", "private_address"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private_address"),  # Teredo
    ("169.254.169.254", "metadata_address"), ("fd00:ec2::254", "metadata_address"),
])
def test_classify_address(addr: str, verdict: str | None) -> None:
    assert classify_address(ipaddress.ip_address(addr)) == verdict
