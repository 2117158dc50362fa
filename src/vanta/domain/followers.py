"""Follower settings as the mirroring core sees them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from vanta.domain.errors import ValidationFailed
from vanta.domain.ids import FollowerId
from vanta.domain.money import MAX_DECIMAL_PLACES, MAX_SCALE, exponent_places, normalize, to_decimal


class FollowerMode(StrEnum):
    PROPORTIONAL = "proportional"
    CAPPED = "capped"
    SHADOW = "shadow"  # sized and recorded like the others, never dispatched


class DeliveryKind(StrEnum):
    WEBHOOK = "webhook"
    BRIDGED = "bridged"


@dataclass(frozen=True, slots=True)
class FollowerSpec:
    follower_id: FollowerId
    mode: FollowerMode
    scale: Decimal
    max_pos_usd: Decimal | None
    kill_switch: bool
    delivery: DeliveryKind = DeliveryKind.WEBHOOK


def parse_scale(value: object) -> Decimal:
    scale = to_decimal(value, field="scale", code="invalid_scale")
    if scale <= 0 or scale > MAX_SCALE or exponent_places(scale) > MAX_DECIMAL_PLACES:
        raise ValidationFailed(
            f"scale must be > 0 and <= {MAX_SCALE}", code="invalid_scale", field="scale"
        )
    return normalize(scale)


def parse_max_pos_usd(value: object) -> Decimal | None:
    if value is None:
        return None
    cap = to_decimal(value, field="max_pos_usd", code="invalid_cap")
    if cap <= 0 or cap > Decimal("1e12") or exponent_places(cap) > 2:
        raise ValidationFailed(
            "max_pos_usd must be > 0, <= 1e12, with at most 2 decimal places",
            code="invalid_cap", field="max_pos_usd",
        )
    return normalize(cap)


def parse_mode(value: object, max_pos_usd: Decimal | None) -> FollowerMode:
    try:
        mode = FollowerMode(value if value is not None else "proportional")
    except ValueError:
        allowed = ", ".join(m.value for m in FollowerMode)
        raise ValidationFailed(f"mode must be one of {allowed}", code="invalid_mode",
                               field="mode") from None
    if mode is FollowerMode.CAPPED and max_pos_usd is None:
        raise ValidationFailed("capped mode needs max_pos_usd", code="cap_required",
                               field="max_pos_usd")
    return mode
