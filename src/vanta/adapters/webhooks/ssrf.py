"""Which webhook targets we are willing to connect to (SSRF guard).

A follower chooses its webhook URL, so a URL is untrusted input: without a guard it could
point the control plane at its own admin ports, at a database on the private network or at
the cloud metadata service. ``resolve_and_vet`` resolves the host once, with the event loop's
``getaddrinfo`` (numeric and legacy numeric forms such as ``2130706433`` or ``0x7f.0.0.1``
included, so they are judged by the address they really mean), and refuses the target when
*any* address is not public unless the operator's ``TargetPolicy`` allows it. The caller must
then connect to exactly the vetted addresses (see ``sender.VettedResolver``), never resolve
the name a second time: that is what makes DNS rebinding between check and connect useless.

URLs are parsed with ``yarl``, the parser aiohttp itself uses, so the host that is vetted is
the host the client would connect to (no parser differential).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

RefusalReason = Literal[
    "scheme", "credentials", "invalid_url", "unresolvable", "private_address",
    "metadata_address",
]

ALLOWED_SCHEMES: Final = frozenset({"http", "https"})

# Instance metadata endpoints: never reachable unless an allowlist CIDR names them.
METADATA_HOSTNAMES: Final = frozenset({
    "metadata.google.internal",  # GCP
    "metadata.goog",  # GCP
    "metadata",  # GCP short name (resolved through the search domain)
    "instance-data",  # AWS
    "instance-data.ec2.internal",  # AWS
    "metadata.azure.internal",
    "metadata.tencentyun.com",
    "metadata.platformequinix.com",
})
METADATA_NETWORKS: Final[tuple[IPNetwork, ...]] = tuple(ipaddress.ip_network(n) for n in (
    "169.254.169.254/32",  # AWS, GCP, Azure, OCI, DigitalOcean, OpenStack ...
    "169.254.170.2/32",  # AWS ECS task metadata / credentials
    "169.254.170.23/32",  # AWS EKS pod identity agent
    "fd00:ec2::254/128",  # AWS IMDS over IPv6
    "fd00:ec2::23/128",  # AWS EKS pod identity agent over IPv6
    "100.100.100.200/32",  # Alibaba Cloud
    "192.0.0.192/32",  # Oracle Cloud (legacy)
))

_CGNAT: Final = ipaddress.ip_network("100.64.0.0/10")
_ULA: Final = ipaddress.ip_network("fc00::/7")
_NAT64: Final = ipaddress.ip_network("64:ff9b::/96")
_NAT64_LOCAL: Final = ipaddress.ip_network("64:ff9b:1::/48")

# gaierror codes that mean "this name does not exist"; anything else may be transient.
_DEFINITE_DNS_ERRORS: Final = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)


class TargetRefused(Exception):
    """The webhook target must not be contacted. ``reason`` is stable and machine-readable.

    ``temporary`` is only ever true for ``unresolvable`` when the lookup failed in a way
    that may succeed later (resolver timeout, SERVFAIL); a name that does not exist is not
    temporary.
    """

    def __init__(self, reason: RefusalReason, detail: str = "", *,
                 temporary: bool = False) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason: RefusalReason = reason
        self.detail = detail
        self.temporary = temporary


@dataclass(frozen=True, slots=True)
class VettedTarget:
    """A target that passed the policy; connect only to ``addresses``."""

    scheme: str
    host: str  # as the HTTP client sees it (yarl ``raw_host``: lower case, IDNA-encoded)
    port: int
    addresses: tuple[str, ...]  # vetted IPs, in resolver order, no duplicates


@dataclass(frozen=True)
class TargetPolicy:
    """Operator policy. Public addresses are always allowed.

    ``allow_private`` allows every non-public address (loopback, RFC 1918, CGNAT, ULA,
    link-local, ...) *except* cloud metadata endpoints. ``allowlist`` holds CIDRs
    ("127.0.0.1/32", "10.20.0.0/16", "fd00::/8"; a bare IP means a single address) and
    exact hostnames ("hooks.internal"; no wildcards). An address inside an allowlisted CIDR
    is allowed whatever it is, metadata included. An allowlisted hostname may resolve to
    private addresses, but not to metadata addresses, and it is the only way to use a
    hostname from ``METADATA_HOSTNAMES``.
    """

    allow_private: bool = False
    allowlist: Sequence[str] = ()
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)
    _hostnames: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.allowlist, str):
            raise TypeError("allowlist must be a sequence of strings, not a string")
        networks: list[IPNetwork] = []
        hostnames: set[str] = set()
        for raw in self.allowlist:
            entry = raw.strip()
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = _normalize_hostname(entry)
            if not name or "/" in entry or "*" in entry or not _looks_like_hostname(name):
                raise ValueError(f"allowlist entry is neither a CIDR nor a hostname: {raw!r}")
            hostnames.add(name)
        object.__setattr__(self, "allowlist", tuple(self.allowlist))
        object.__setattr__(self, "_networks", tuple(networks))
        object.__setattr__(self, "_hostnames", frozenset(hostnames))

    def host_allowlisted(self, host: str) -> bool:
        return _normalize_hostname(host) in self._hostnames

    def address_allowlisted(self, ip: IPAddress) -> bool:
        candidates = [ip, *_embedded_ipv4(ip)]
        return any(c in net for c in candidates for net in self._networks
                   if c.version == net.version)


def classify_address(ip: IPAddress) -> Literal["metadata_address", "private_address"] | None:
    """``None`` for a public unicast address, else why it is not public.

    IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible, 6to4, Teredo,
    NAT64) are judged by the embedded address too; the worse answer wins.
    """
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return _classify_one(ip.ipv4_mapped)  # a socket to ::ffff:a.b.c.d reaches a.b.c.d
    verdicts = [_classify_one(ip), *(_classify_one(v4) for v4 in _embedded_ipv4(ip))]
    if "metadata_address" in verdicts:
        return "metadata_address"
    if "private_address" in verdicts:
        return "private_address"
    return None


def parse_target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL, refusing bad schemes, credentials and malformed URLs.

    Needs no network; ``host`` is what the HTTP client will look up (yarl ``raw_host``).
    """
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as e:
        raise TargetRefused("invalid_url", str(e)[:200]) from None
    scheme = (parsed.scheme or "").lower()
    if scheme not in ALLOWED_SCHEMES:
        raise TargetRefused("scheme", scheme or "missing")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise TargetRefused("credentials")
    host = parsed.raw_host
    try:
        port = parsed.port
    except ValueError as e:
        raise TargetRefused("invalid_url", str(e)[:200]) from None
    if not host or port is None or not 0 < port < 65536:
        raise TargetRefused("invalid_url", "missing host or port")
    return scheme, host, port


async def resolve_and_vet(url: str, policy: TargetPolicy) -> VettedTarget:
    """Resolve ``url``'s host once and return it if every address is acceptable.

    Raises ``TargetRefused`` with reason ``scheme``, ``credentials``, ``invalid_url``,
    ``unresolvable``, ``private_address`` or ``metadata_address``.
    """
    return await _resolve(url, policy)


async def resolve_unvetted(url: str) -> VettedTarget:
    """Same shape as ``resolve_and_vet`` but without the address policy ("allow everything").

    Scheme, credentials and URL shape are still checked.
    """
    return await _resolve(url, None)


async def _resolve(url: str, policy: TargetPolicy | None) -> VettedTarget:
    scheme, host, port = parse_target(url)
    name_allowlisted = policy is not None and policy.host_allowlisted(host)
    if (policy is not None and not name_allowlisted
            and _normalize_hostname(host) in METADATA_HOSTNAMES):
        raise TargetRefused("metadata_address", _normalize_hostname(host))
    addresses = await _lookup(host, port)
    if policy is not None:
        for text, ip in addresses:
            verdict = classify_address(ip)
            if verdict is None or policy.address_allowlisted(ip):
                continue
            if verdict == "private_address" and (policy.allow_private or name_allowlisted):
                continue
            raise TargetRefused(verdict, text)
    return VettedTarget(scheme=scheme, host=host, port=port,
                        addresses=tuple(text for text, _ in addresses))


def _canonical_literal(host: str) -> IPAddress | None:
    """The address ``host`` is, if it is an address written in its one canonical form (no
    zone, no legacy numeric spelling): it needs no lookup, and a lookup could not differ."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip.scope_id):
        return None  # their text forms differ between resolvers: let getaddrinfo say
    return ip if str(ip) == host.strip("[]") else None


async def _lookup(host: str, port: int) -> list[tuple[str, IPAddress]]:
    literal = _canonical_literal(host)
    if literal is not None:  # spares a resolver thread per delivery
        return [(str(literal), literal)]
    # yarl keeps an IPv6 zone percent-encoded ("fe80::1%25eth0"); getaddrinfo wants "%eth0".
    query = host.replace("%25", "%") if ":" in host else host
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(query, port, type=socket.SOCK_STREAM,
                                       proto=socket.IPPROTO_TCP)
    except socket.gaierror as e:
        raise TargetRefused("unresolvable", f"{host}: {e.strerror or e}",
                            temporary=e.errno not in _DEFINITE_DNS_ERRORS) from None
    except (OSError, UnicodeError) as e:
        raise TargetRefused("unresolvable", f"{host}: {e}",
                            temporary=isinstance(e, OSError)) from None
    seen: dict[str, IPAddress] = {}
    for family, _type, _proto, _canon, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        text = str(sockaddr[0])
        try:
            seen.setdefault(text, ipaddress.ip_address(text))
        except ValueError:
            # An address we cannot classify is an address we cannot vouch for.
            raise TargetRefused("unresolvable", f"{host}: unparsable address {text!r}") from None
    if not seen:
        raise TargetRefused("unresolvable", f"{host}: no IPv4/IPv6 address")
    return list(seen.items())


def _classify_one(ip: IPAddress) -> Literal["metadata_address", "private_address"] | None:
    plain = ip
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        plain = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if any(plain in net for net in METADATA_NETWORKS if net.version == plain.version):
        return "metadata_address"
    if (plain.is_loopback or plain.is_private or plain.is_link_local or plain.is_multicast
            or plain.is_unspecified or plain.is_reserved or not plain.is_global):
        return "private_address"
    if isinstance(plain, ipaddress.IPv4Address):
        if plain in _CGNAT:
            return "private_address"
    elif plain in _ULA or plain.is_site_local or plain in _NAT64_LOCAL:
        return "private_address"
    return None


def _embedded_ipv4(ip: IPAddress) -> list[ipaddress.IPv4Address]:
    if not isinstance(ip, ipaddress.IPv6Address):
        return []
    found: list[ipaddress.IPv4Address] = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    packed = ip.packed
    if ip in _NAT64 or (packed[:12] == bytes(12) and packed[12:] != bytes(4)):
        # NAT64 well-known prefix, or deprecated IPv4-compatible ::a.b.c.d
        found.append(ipaddress.IPv4Address(packed[12:]))
    return found


def _normalize_hostname(host: str) -> str:
    name = host.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii") if not name.isascii() else name
    except UnicodeError:
        return name


def _looks_like_hostname(name: str) -> bool:
    labels = name.split(".")
    return all(0 < len(label) <= 63 and all(c.isalnum() or c in "-_" for c in label)
               for label in labels)
