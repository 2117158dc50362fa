"""Typed records of the catalog repositories: vaults, followers, overlays and instruments.

Each record is built from a stored row (column name to value, as both the SQL adapter and
the in-memory fake read it back: timestamps aware, decimals exact, JSON decoded) by its
``from_row``, the one constructor both use, so the two cannot drift apart. Follower and
vault records are read on the dispatch path: construction does no validation beyond the
enum lookups.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from vanta.domain.followers import FollowerMode, ScaleMode
from vanta.domain.money import Instrument
from vanta.domain.overlays import Overlay, OverlayKind


@dataclass(frozen=True, slots=True)
class VaultRecord:
    vault_id: str
    tenant_id: str
    label: str
    rails: Mapping[str, Any]
    personas: Sequence[str]
    risk_profile: Mapping[str, Any]
    public: bool
    maintenance: bool
    created_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> VaultRecord:
        return cls(r["vault_id"], r["tenant_id"], r["label"], r["rails"], r["personas"],
                   r["risk_profile"], bool(r["public"]), bool(r["maintenance"]),
                   r["created_at"])


@dataclass(frozen=True, slots=True)
class FollowerRecord:
    follower_id: str
    tenant_id: str
    vault_id: str
    label: str
    mode: FollowerMode
    scale: Decimal
    max_pos_usd: Decimal | None
    kill_switch: bool
    webhook_url: str | None
    hmac_key_ref: str | None
    bridged_brokers: Mapping[str, Any] | None  # {"broker": name, "ref": secret ref}
    created_at: datetime
    updated_at: datetime
    scale_mode: ScaleMode
    nav_multiplier: Decimal
    fractional: bool
    paused: bool
    paused_reason: str | None
    protections: Mapping[str, Any] | None  # Protections.to_json()
    plan_id: str
    overlay_opt_in: bool
    # signing keys still honoured during a rotation: [{"ref": ..., "not_after": iso | None}]
    webhook_keys: Sequence[Mapping[str, Any]] | None
    webhook_disabled_at: datetime | None  # set on a 410 Gone
    webhook_disabled_reason: str | None

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> FollowerRecord:
        return cls(
            r["follower_id"], r["tenant_id"], r["vault_id"], r["label"],
            FollowerMode(r["mode"]), r["scale"], r["max_pos_usd"], bool(r["kill_switch"]),
            r["webhook_url"], r["hmac_key_ref"], r["bridged_brokers"], r["created_at"],
            r["updated_at"], ScaleMode(r["scale_mode"]), r["nav_multiplier"],
            bool(r["fractional"]), bool(r["paused"]), r["paused_reason"], r["protections"],
            r["plan_id"], bool(r["overlay_opt_in"]), r["webhook_keys"],
            r["webhook_disabled_at"], r["webhook_disabled_reason"])


@dataclass(frozen=True, slots=True)
class InstrumentRecord:
    symbol: str
    venue: str
    lot_step: Decimal
    min_qty: Decimal
    min_notional: Decimal
    fractional_step: Decimal | None
    updated_at: datetime

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> InstrumentRecord:
        return cls(r["symbol"], r["venue"], r["lot_step"], r["min_qty"], r["min_notional"],
                   r["fractional_step"], r["updated_at"])

    def instrument(self) -> Instrument:
        """The trading rules, as sizing uses them."""
        return Instrument(self.symbol, self.venue, self.lot_step, self.min_qty,
                          self.min_notional, self.fractional_step)


@dataclass(frozen=True, slots=True)
class OverlayRecord:
    overlay_id: str
    tenant_id: str
    vault_id: str
    kind: OverlayKind
    params: Mapping[str, Any]  # {"amplify": str, "persona": str | None}
    actor: str
    applied_at: datetime
    expires_at: datetime
    reverted_at: datetime | None
    state: str  # active | reverted

    @classmethod
    def from_row(cls, r: Mapping[str, Any]) -> OverlayRecord:
        return cls(r["overlay_id"], r["tenant_id"], r["vault_id"], OverlayKind(r["kind"]),
                   r["params"], r["actor"], r["applied_at"], r["expires_at"],
                   r["reverted_at"], r["state"])

    def overlay(self) -> Overlay:
        """The overlay as sizing applies it."""
        p = self.params
        return Overlay(self.overlay_id, self.kind, Decimal(p.get("amplify", "0")),
                       p.get("persona"), self.applied_at, self.expires_at)
