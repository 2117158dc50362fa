"""Vault overlays: maintenance, flip mode and persona boosts.

Effects are deterministic multipliers on the *buy* side of a follower's scale. They are
applied before caps and minimums, so an overlay can never push a child past a cap, never
makes a sell larger than the position, and never opens a short (sells are capped at holdings).

| persona | reading | buy multiplier |
|---|---|---|
| Athena  | risk-averse, defensive          | 0.75 |
| Apollo  | aggressive, growth-seeking      | 1.25 |
| Ares    | contrarian: fades the entry     | 0.50 |
| Nemesis | hedged, risk-balancing          | 0.90 |

Flip mode multiplies by (1 + amplify), amplify in [-0.9, +1.0], for a TTL of 1 to 60 minutes
(default 30), after which the scheduler reverts it. Overlays compound: flip × persona.
Boost factors are computed exactly (never rounded to 28 digits): sizing multiplies them into
its ratio and floors once at the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from vanta.domain.errors import ValidationFailed
from vanta.domain.money import EXACT, exact_mul, to_decimal


class OverlayKind(StrEnum):
    FLIP = "flip"
    PERSONA = "persona"


PERSONA_BUY_MULTIPLIER: Mapping[str, Decimal] = {
    "Athena": Decimal("0.75"),
    "Apollo": Decimal("1.25"),
    "Ares": Decimal("0.50"),
    "Nemesis": Decimal("0.90"),
}
MIN_TTL = timedelta(minutes=1)
MAX_TTL = timedelta(minutes=60)
DEFAULT_TTL = timedelta(minutes=30)
MIN_TTL_MINUTES, MAX_TTL_MINUTES = Decimal(1), Decimal(60)
MIN_AMPLIFY = Decimal("-0.9")
MAX_AMPLIFY = Decimal("1.0")
ONE = Decimal(1)


@dataclass(frozen=True, slots=True)
class Overlay:
    overlay_id: str
    kind: OverlayKind
    amplify: Decimal  # flip only; 0 for persona
    persona: str | None
    applied_at: datetime
    expires_at: datetime

    def active_at(self, ts: datetime) -> bool:
        return self.applied_at <= ts < self.expires_at

    def multiplier(self) -> Decimal:
        if self.kind is OverlayKind.FLIP:
            m = EXACT.add(ONE, self.amplify)
            if self.persona:
                m = exact_mul(m, PERSONA_BUY_MULTIPLIER[self.persona])
            return m
        assert self.persona is not None
        return PERSONA_BUY_MULTIPLIER[self.persona]

    def to_json(self) -> dict[str, Any]:
        return {"overlay_id": self.overlay_id, "kind": self.kind.value,
                "amplify": str(self.amplify), "persona": self.persona,
                "applied_at": self.applied_at.isoformat(),
                "expires_at": self.expires_at.isoformat()}

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Overlay:
        return cls(d["overlay_id"], OverlayKind(d["kind"]), Decimal(d["amplify"]),
                   d.get("persona"), datetime.fromisoformat(d["applied_at"]),
                   datetime.fromisoformat(d["expires_at"]))


@dataclass(frozen=True, slots=True)
class OverlayEffect:
    """What active overlays do to one follower's buys, given what it may use."""

    flip: Decimal = ONE
    persona: Decimal = ONE

    def for_follower(self, flip_allowed: bool, persona_allowed: bool) -> Decimal:
        if flip_allowed:
            return exact_mul(self.flip, self.persona) if persona_allowed else self.flip
        return self.persona if persona_allowed else ONE

    def to_json(self) -> dict[str, str]:
        return {"flip": str(self.flip), "persona": str(self.persona)}

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> OverlayEffect:
        if not d:
            return cls()
        return cls(Decimal(d.get("flip", "1")), Decimal(d.get("persona", "1")))


def effect_of(overlays: Iterable[Overlay], at: datetime) -> OverlayEffect:
    """Flip overlays (with their optional persona) need flip rights; persona-only overlays
    need persona rights. Several active overlays of a kind compound, in id order."""
    flip, persona = ONE, ONE
    for o in sorted(overlays, key=lambda o: o.overlay_id):
        if not o.active_at(at):
            continue
        if o.kind is OverlayKind.FLIP:
            flip = exact_mul(flip, o.multiplier())
        else:
            persona = exact_mul(persona, o.multiplier())
    return OverlayEffect(flip, persona)


def parse_overlay_request(raw: object) -> dict[str, Any]:
    """Validate ``{"flip": {...}}``, ``{"persona": "Apollo", "ttl_minutes": n}`` or
    ``{"maintenance": {"enabled": bool}}``; returns a normalized dict."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - {"flip", "persona", "maintenance", "ttl_minutes"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    if "maintenance" in raw:
        m = raw["maintenance"]
        if not isinstance(m, Mapping) or not isinstance(m.get("enabled"), bool) or \
                len(raw) != 1:
            raise ValidationFailed("maintenance must be {\"enabled\": true|false} on its own",
                                   code="invalid_overlay", field="maintenance")
        return {"maintenance": m["enabled"]}
    persona = raw.get("persona")
    flip = raw.get("flip")
    if persona is None and flip is None:
        raise ValidationFailed("give flip, persona or maintenance", code="invalid_overlay")
    if persona is not None and persona not in PERSONA_BUY_MULTIPLIER:
        raise ValidationFailed(f"persona must be one of {', '.join(PERSONA_BUY_MULTIPLIER)}",
                               code="unknown_persona", field="persona")
    ttl = DEFAULT_TTL
    amplify = Decimal(0)
    ttl_raw = raw.get("ttl_minutes")
    if flip is not None:
        if not isinstance(flip, Mapping) or set(flip) - {"amplify", "ttl_minutes"}:
            raise ValidationFailed("flip must be {\"amplify\": x, \"ttl_minutes\": n}",
                                   code="invalid_overlay", field="flip")
        amplify = to_decimal(flip.get("amplify", 0), field="flip.amplify",
                             code="invalid_amplify")
        if not MIN_AMPLIFY <= amplify <= MAX_AMPLIFY:
            raise ValidationFailed(f"amplify must be between {MIN_AMPLIFY} and {MAX_AMPLIFY}",
                                   code="invalid_amplify", field="flip.amplify")
        ttl_raw = flip.get("ttl_minutes", ttl_raw)
    if ttl_raw is not None:
        minutes = to_decimal(ttl_raw, field="ttl_minutes", code="invalid_ttl")
        # the range on the exact value, before a timedelta (1e13 minutes overflows one)
        if not MIN_TTL_MINUTES <= minutes <= MAX_TTL_MINUTES:
            raise ValidationFailed("ttl_minutes must be between 1 and 60", code="invalid_ttl",
                                   field="ttl_minutes")
        ttl = timedelta(minutes=float(minutes))
    return {"kind": OverlayKind.FLIP if flip is not None else OverlayKind.PERSONA,
            "amplify": amplify, "persona": persona, "ttl": ttl}
