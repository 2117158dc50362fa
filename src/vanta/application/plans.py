"""What a follower's plan lets it use, decided by the domain's entitlement rules."""

from __future__ import annotations

from functools import cache

from vanta.domain.entitlements import (
    Decision,
    Entitlements,
    Feature,
    OverlayKind,
    can_apply_overlay,
    can_use_mode,
    decide,
    entitlements_for,
)
from vanta.domain.errors import ValidationFailed


@cache
def _plan(plan_id: str) -> Entitlements:
    return entitlements_for(plan_id)


def follower_rights(plan_id: str, opted_in: bool) -> tuple[bool, bool]:
    """(flip allowed, persona boosts allowed): the plan must allow it and the follower opt in."""
    if not opted_in:
        return False, False
    ent = _plan(plan_id)
    return (can_apply_overlay(ent, OverlayKind.FLIP).allowed,
            can_apply_overlay(ent, OverlayKind.PERSONA_BOOST).allowed)


def require_mode_allowed(plan_id: str, mode: str) -> None:
    decision = can_use_mode(_plan(plan_id), mode)
    if not decision.allowed:
        raise ValidationFailed(f"{mode} mode is not part of the {plan_id} plan",
                               code=decision.reason, field="mode")


def can_bring_signing_key(plan_id: str) -> Decision:
    return decide(_plan(plan_id), Feature.DEDICATED_SIGNING_KEYS)
