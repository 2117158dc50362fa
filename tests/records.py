"""Typed records for tests that need one without a database round trip."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from vanta.application.ports.records_catalog import FollowerRecord

T0 = datetime(2026, 1, 1, tzinfo=UTC)

FOLLOWER_ROW: dict[str, Any] = {
    "follower_id": "f1", "tenant_id": "tnt_a", "vault_id": "VA", "label": "f",
    "mode": "proportional", "scale": Decimal(1), "max_pos_usd": None, "kill_switch": False,
    "webhook_url": None, "hmac_key_ref": None, "bridged_brokers": None, "created_at": T0,
    "updated_at": T0, "scale_mode": "fixed", "nav_multiplier": Decimal(1),
    "fractional": False, "paused": False, "paused_reason": None, "protections": None,
    "plan_id": "core", "overlay_opt_in": False, "webhook_keys": None,
    "webhook_disabled_at": None, "webhook_disabled_reason": None,
}
"""Every column of a stored follower, as the repositories read it back (defaults)."""


def follower_record(**columns: Any) -> FollowerRecord:
    return FollowerRecord.from_row({**FOLLOWER_ROW, **columns})
