"""Follower settings as the mirroring core sees them, and their validation."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any, cast

from vanta.domain.errors import ValidationFailed
from vanta.domain.ids import FollowerId
from vanta.domain.money import (
    MAX_DECIMAL_PLACES,
    MAX_SCALE,
    exponent_places,
    normalize,
    to_decimal,
)


class FollowerMode(StrEnum):
    PROPORTIONAL = "proportional"  # scale only
    CAPPED = "capped"  # scale, then max_pos_usd
    SHADOW = "shadow"  # sized and recorded like the others, never dispatched


class ScaleMode(StrEnum):
    FIXED = "fixed"  # qty × scale
    NAV_RATIO = "nav_ratio"  # qty × (follower NAV ÷ manager NAV) × nav_multiplier


class DeliveryKind(StrEnum):
    WEBHOOK = "webhook"
    BRIDGED = "bridged"


@dataclass(frozen=True, slots=True)
class Protections:
    """Guards a follower sets on itself. Risk guards stop new buys; exits always go out."""

    drawdown_stop_pct: Decimal | None = None  # pause when NAV is this % below its peak
    daily_loss_limit_usd: Decimal | None = None  # no buys once today's loss reaches this
    max_order_usd: Decimal | None = None  # one child's notional is cut to this
    allow_symbols: frozenset[str] = frozenset()  # empty = all
    deny_symbols: frozenset[str] = frozenset()
    symbol_map: Mapping[str, str] = field(default_factory=dict)  # manager symbol -> own

    def to_json(self) -> dict[str, Any]:
        return {
            "drawdown_stop_pct": _s(self.drawdown_stop_pct),
            "daily_loss_limit_usd": _s(self.daily_loss_limit_usd),
            "max_order_usd": _s(self.max_order_usd),
            "allow_symbols": sorted(self.allow_symbols),
            "deny_symbols": sorted(self.deny_symbols),
            "symbol_map": dict(sorted(self.symbol_map.items())),
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Protections:
        if not d:
            return cls()
        return cls(
            drawdown_stop_pct=_d(d.get("drawdown_stop_pct")),
            daily_loss_limit_usd=_d(d.get("daily_loss_limit_usd")),
            max_order_usd=_d(d.get("max_order_usd")),
            allow_symbols=frozenset(d.get("allow_symbols") or ()),
            deny_symbols=frozenset(d.get("deny_symbols") or ()),
            symbol_map=dict(d.get("symbol_map") or {}),
        )


@dataclass(frozen=True, slots=True)
class FollowerSpec:
    follower_id: FollowerId
    mode: FollowerMode
    scale: Decimal
    max_pos_usd: Decimal | None
    kill_switch: bool
    delivery: DeliveryKind = DeliveryKind.WEBHOOK
    scale_mode: ScaleMode = ScaleMode.FIXED
    nav_multiplier: Decimal = Decimal(1)
    fractional: bool = False  # the follower's broker accepts fractional shares
    paused: bool = False
    protections: Protections = field(default_factory=Protections)
    flip_allowed: bool = False  # plan allows flip mode and the follower opted in
    persona_allowed: bool = False  # plan allows persona boosts and the follower opted in

    def to_json(self) -> dict[str, Any]:
        return {
            "follower_id": self.follower_id, "mode": self.mode.value, "scale": str(self.scale),
            "max_pos_usd": _s(self.max_pos_usd), "kill_switch": self.kill_switch,
            "delivery": self.delivery.value, "scale_mode": self.scale_mode.value,
            "nav_multiplier": str(self.nav_multiplier), "fractional": self.fractional,
            "paused": self.paused, "protections": self.protections.to_json(),
            "flip_allowed": self.flip_allowed, "persona_allowed": self.persona_allowed,
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> FollowerSpec:
        return cls(
            follower_id=FollowerId(d["follower_id"]), mode=FollowerMode(d["mode"]),
            scale=Decimal(d["scale"]), max_pos_usd=_d(d.get("max_pos_usd")),
            kill_switch=bool(d["kill_switch"]),
            delivery=DeliveryKind(d.get("delivery", "webhook")),
            scale_mode=ScaleMode(d.get("scale_mode", "fixed")),
            nav_multiplier=Decimal(d.get("nav_multiplier", "1")),
            fractional=bool(d.get("fractional", False)), paused=bool(d.get("paused", False)),
            protections=Protections.from_json(d.get("protections")),
            flip_allowed=bool(d.get("flip_allowed", False)),
            persona_allowed=bool(d.get("persona_allowed", False)),
        )

    def with_(self, **changes: Any) -> FollowerSpec:
        return replace(self, **changes)


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def _d(v: object) -> Decimal | None:
    return None if v is None else Decimal(str(v))


# ---- validation of user input -------------------------------------------------------------


def parse_scale(value: object, field_name: str = "scale") -> Decimal:
    scale = to_decimal(value, field=field_name, code="invalid_scale")
    if scale <= 0 or scale > MAX_SCALE or exponent_places(scale) > MAX_DECIMAL_PLACES:
        raise ValidationFailed(
            f"{field_name} must be > 0 and <= {MAX_SCALE}", code="invalid_scale", field=field_name
        )
    return normalize(scale)


def parse_usd(value: object, field_name: str, code: str = "invalid_cap") -> Decimal | None:
    if value is None:
        return None
    amount = to_decimal(value, field=field_name, code=code)
    if amount <= 0 or amount > Decimal("1e12") or exponent_places(amount) > 2:
        raise ValidationFailed(
            f"{field_name} must be > 0, <= 1e12, with at most 2 decimal places",
            code=code, field=field_name,
        )
    return normalize(amount)


def parse_max_pos_usd(value: object) -> Decimal | None:
    return parse_usd(value, "max_pos_usd")


def parse_mode(value: object, max_pos_usd: Decimal | None) -> FollowerMode:
    """A cap given without a mode means capped mode; an explicit proportional mode with a cap
    is refused rather than silently ignoring the cap or silently enforcing it."""
    if value is None:
        return FollowerMode.CAPPED if max_pos_usd is not None else FollowerMode.PROPORTIONAL
    try:
        # any other value is refused by the lookup itself (ValueError)
        mode = FollowerMode(cast(str, value))
    except ValueError:
        allowed = ", ".join(m.value for m in FollowerMode)
        raise ValidationFailed(f"mode must be one of {allowed}", code="invalid_mode",
                               field="mode") from None
    if mode is FollowerMode.CAPPED and max_pos_usd is None:
        raise ValidationFailed("capped mode needs max_pos_usd", code="cap_required",
                               field="max_pos_usd")
    if mode is FollowerMode.PROPORTIONAL and max_pos_usd is not None:
        raise ValidationFailed("max_pos_usd applies in capped mode; set mode to capped",
                               code="cap_requires_capped_mode", field="max_pos_usd")
    return mode


def parse_scale_mode(value: object) -> ScaleMode:
    try:
        return ScaleMode(cast(str, value) if value is not None else "fixed")
    except ValueError:
        raise ValidationFailed("scale_mode must be fixed or nav_ratio",
                               code="invalid_scale_mode", field="scale_mode") from None


_SYMBOL_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-")


def _symbol(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= 32 or \
            not set(value.upper()) <= _SYMBOL_CHARS:
        raise ValidationFailed(f"{field_name} holds an invalid symbol", code="invalid_symbol",
                               field=field_name)
    return value.upper()


def parse_protections(raw: object) -> Protections:
    if raw is None:
        return Protections()
    if not isinstance(raw, Mapping):
        raise ValidationFailed("protections must be an object", code="invalid_protections",
                               field="protections")
    known = {"drawdown_stop_pct", "daily_loss_limit_usd", "max_order_usd", "allow_symbols",
             "deny_symbols", "symbol_map"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValidationFailed(f"unknown protection(s): {', '.join(unknown)}",
                               code="unknown_field", field=f"protections.{unknown[0]}")
    dd = raw.get("drawdown_stop_pct")
    drawdown = None
    if dd is not None:
        drawdown = to_decimal(dd, field="protections.drawdown_stop_pct",
                              code="invalid_protections")
        if not Decimal(0) < drawdown < Decimal(100):
            raise ValidationFailed("drawdown_stop_pct must be between 0 and 100",
                                   code="invalid_protections",
                                   field="protections.drawdown_stop_pct")
        drawdown = normalize(drawdown)

    def symbols(key: str) -> frozenset[str]:
        v = raw.get(key) or []
        if not isinstance(v, list) or len(v) > 1000:
            raise ValidationFailed(f"{key} must be a list of symbols", code="invalid_protections",
                                   field=f"protections.{key}")
        return frozenset(_symbol(s, f"protections.{key}") for s in v)

    smap = raw.get("symbol_map") or {}
    if not isinstance(smap, Mapping) or len(smap) > 1000:
        raise ValidationFailed("symbol_map must map symbols to symbols",
                               code="invalid_protections", field="protections.symbol_map")
    return Protections(
        drawdown_stop_pct=drawdown,
        daily_loss_limit_usd=parse_usd(raw.get("daily_loss_limit_usd"),
                                       "protections.daily_loss_limit_usd", "invalid_protections"),
        max_order_usd=parse_usd(raw.get("max_order_usd"), "protections.max_order_usd",
                                "invalid_protections"),
        allow_symbols=symbols("allow_symbols"), deny_symbols=symbols("deny_symbols"),
        symbol_map={_symbol(k, "protections.symbol_map"): _symbol(v, "protections.symbol_map")
                    for k, v in smap.items()},
    )
