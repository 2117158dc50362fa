"""What a follower's plan lets it use, decided by the domain's entitlement rules."""

from __future__ import annotations

from vanta.domain.errors import ValidationFailed


def follower_rights(plan_id: str, opted_in: bool) -> tuple[bool, bool]:
    """(flip allowed, persona boosts allowed): the plan must allow it and the follower opt in."""
    if not opted_in:
        return False, False
    return plan_id in ("pro", "institutional"), plan_id in ("pro", "institutional")


def require_mode_allowed(plan_id: str, mode: str) -> None:
    if mode == "capped" and plan_id == "core":
        raise ValidationFailed("capped mode needs the Pro plan or above",
                               code="plan_lacks_feature", field="mode")
