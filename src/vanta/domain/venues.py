"""Venue fee models: what one execution venue charges and how fast it answers, as data.

A platform admin edits these through the API; each edit is a new ``version`` recorded in the
audit log, so a routing decision names the exact model it was priced with. Costs are in basis
points of the notional (1 bp = 1/10,000), kept as ``Decimal`` and applied with exact
arithmetic: dividing by 10,000 only moves the decimal point, so it never rounds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from vanta.domain.errors import NotFound, ValidationFailed
from vanta.domain.money import MAX_DECIMAL_PLACES, ZERO, exponent_places, normalize, to_decimal

STABLECOIN: Final = "USDC"
FIAT: Final = "USD"
# The conversion pair: USD in, USDC out (and back, for sell proceeds above the buffer).
CONVERSION_PAIR: Final = f"{STABLECOIN}-{FIAT}"
KNOWN_VENUES: Final = ("paper", "coinbase", "kraken", "binance")
MAX_BPS: Final = Decimal(10_000)
MAX_LATENCY_MS: Final = 3_600_000
MAX_MIN_ORDER: Final = Decimal(1_000_000)
_PAIR = re.compile(r"^[A-Z0-9]{2,10}-[A-Z0-9]{2,10}$")
FIELDS: Final = frozenset({"maker_bps", "taker_bps", "spread_bps", "conversion_bps",
                           "min_order_usd", "latency_ms", "pairs"})


def bps_of(amount: Decimal, bps: Decimal) -> Decimal:
    """``amount × bps / 10,000`` exactly (a shift of the exponent, never a rounding)."""
    return (amount * bps).scaleb(-4) if amount and bps else ZERO


def parse_pair(raw: object, *, field: str = "pair") -> str:
    if not isinstance(raw, str) or not _PAIR.match(raw.strip().upper()):
        raise ValidationFailed(f"{field} must look like BTC-USD", code="unknown_pair",
                               field=field)
    return raw.strip().upper()


@dataclass(frozen=True, slots=True)
class VenueFees:
    """One venue's fee model. ``conversion_bps`` is None when the venue cannot convert
    USD to USDC; ``pairs`` lists the spot pairs it trades (``BASE-QUOTE``)."""

    venue: str
    maker_bps: Decimal
    taker_bps: Decimal
    spread_bps: Decimal  # estimated half spread paid crossing the book
    conversion_bps: Decimal | None
    min_order_usd: Decimal
    latency_ms: int  # estimated time for one leg to fill
    pairs: frozenset[str]
    version: int = 1

    def trades(self, pair: str) -> bool:
        return pair in self.pairs

    @property
    def converts(self) -> bool:
        return self.conversion_bps is not None

    def to_json(self) -> dict[str, Any]:
        return {"venue": self.venue, "version": self.version,
                "maker_bps": str(self.maker_bps), "taker_bps": str(self.taker_bps),
                "spread_bps": str(self.spread_bps),
                "conversion_bps": None if self.conversion_bps is None
                else str(self.conversion_bps),
                "min_order_usd": str(self.min_order_usd), "latency_ms": self.latency_ms,
                "pairs": sorted(self.pairs)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> VenueFees:
        conv = d.get("conversion_bps")
        return cls(str(d["venue"]), Decimal(str(d["maker_bps"])), Decimal(str(d["taker_bps"])),
                   Decimal(str(d["spread_bps"])),
                   None if conv is None else Decimal(str(conv)),
                   Decimal(str(d["min_order_usd"])), int(d["latency_ms"]),
                   frozenset(str(p) for p in d["pairs"]), int(d.get("version", 1)))


def known_venue(raw: object) -> str:
    """The venue's canonical name, or ``NotFound`` (code ``unknown_venue``)."""
    name = raw.strip().lower() if isinstance(raw, str) else ""
    if name not in KNOWN_VENUES:
        raise NotFound(f"unknown venue {str(raw)[:40]!r}; known: {', '.join(KNOWN_VENUES)}",
                       code="unknown_venue")
    return name


def _bps(raw: object, field: str) -> Decimal:
    d = to_decimal(raw, field=field, code="invalid_fee_model")
    if d < 0 or d > MAX_BPS or exponent_places(d) > 4:
        raise ValidationFailed(f"{field} must be between 0 and 10000 bps with at most 4 "
                               "decimal places", code="invalid_fee_model", field=field)
    return normalize(d)


def parse_fee_model(venue: str, raw: object, *, version: int = 1) -> VenueFees:
    """Validate a whole fee model (every field is required but ``conversion_bps``)."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    missing = sorted(FIELDS - {"conversion_bps"} - set(raw))
    if missing:
        raise ValidationFailed(f"{missing[0]} is required", code="missing_field",
                               field=missing[0])
    min_order = to_decimal(raw["min_order_usd"], field="min_order_usd", code="invalid_fee_model")
    if min_order < 0 or min_order > MAX_MIN_ORDER or \
            exponent_places(min_order) > MAX_DECIMAL_PLACES:
        raise ValidationFailed("min_order_usd must be between 0 and 1000000",
                               code="invalid_fee_model", field="min_order_usd")
    latency = raw["latency_ms"]
    if isinstance(latency, bool) or not isinstance(latency, int) or \
            not 0 <= latency <= MAX_LATENCY_MS:
        raise ValidationFailed("latency_ms must be a whole number of milliseconds, "
                               "0 to 3600000", code="invalid_fee_model", field="latency_ms")
    pairs = raw["pairs"]
    if not isinstance(pairs, list) or not pairs or len(pairs) > 200:
        raise ValidationFailed("pairs must list 1 to 200 pairs such as BTC-USD",
                               code="invalid_fee_model", field="pairs")
    conv = raw.get("conversion_bps")
    return VenueFees(venue, _bps(raw["maker_bps"], "maker_bps"),
                     _bps(raw["taker_bps"], "taker_bps"), _bps(raw["spread_bps"], "spread_bps"),
                     None if conv is None else _bps(conv, "conversion_bps"),
                     normalize(min_order), latency,
                     frozenset(parse_pair(p, field="pairs") for p in pairs), version)


def _default(venue: str, maker: str, taker: str, spread: str, conv: str | None,
             min_order: str, latency: int, bases: tuple[str, ...]) -> VenueFees:
    pairs = {f"{b}-{q}" for b in bases for q in (FIAT, STABLECOIN)}
    if conv is not None:
        pairs.add(CONVERSION_PAIR)
    return VenueFees(venue, Decimal(maker), Decimal(taker), Decimal(spread),
                     None if conv is None else Decimal(conv), Decimal(min_order), latency,
                     frozenset(pairs), 0)


# Starting points, version 0 (never edited); published schedules at entry tiers, rounded.
DEFAULT_FEE_MODELS: Final[Mapping[str, VenueFees]] = {
    "paper": _default("paper", "0", "0", "0", "0", "1", 50, ("BTC", "ETH", "SOL")),
    "coinbase": _default("coinbase", "40", "60", "5", "0", "1", 400, ("BTC", "ETH", "SOL")),
    "kraken": _default("kraken", "25", "40", "4", "10", "5", 600, ("BTC", "ETH", "SOL")),
    "binance": _default("binance", "10", "10", "3", "5", "5", 300, ("BTC", "ETH", "SOL")),
}


# Which rails a follower's broker binding gives it, and which crypto venues it is linked to.
BROKER_RAILS: Final[Mapping[str, frozenset[str]]] = {
    "paper": frozenset({"fiat", "crypto"}), "alpaca": frozenset({"fiat"}),
    "tradier": frozenset({"fiat"}), "coinbase": frozenset({"crypto"}),
    # accounts funded in USD that trade USDC pairs: their crypto children are routed legs
    "binance": frozenset({"fiat", "crypto"}), "kraken": frozenset({"fiat", "crypto"}),
}


def follower_rails(broker: str | None) -> frozenset[str]:
    """A webhook follower (no binding) executes itself and may take either rail."""
    return frozenset({"fiat", "crypto"}) if broker is None else \
        BROKER_RAILS.get(broker, frozenset())


def linked_venues(broker: str | None) -> tuple[str, ...]:
    """The venues a router may use for a follower: its own crypto-capable broker, or every
    known venue for a webhook follower (the legs it receives are a plan it runs itself)."""
    if broker is None:
        return KNOWN_VENUES
    return (broker,) if broker in KNOWN_VENUES and "crypto" in follower_rails(broker) else ()
