"""The tables of the in-memory store: columns, keys and defaults, as in
``vanta.adapters.db.tables`` (the contract suite checks that the two agree, so a migration
that adds a column fails there until it is added here too)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True)
class TableSpec:
    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    required: frozenset[str] = frozenset()  # NOT NULL without a default
    defaults: Mapping[str, Any] = field(default_factory=dict)
    decimals: frozenset[str] = frozenset()
    json: frozenset[str] = frozenset()
    unique: tuple[tuple[str, ...], ...] = ()
    foreign: Mapping[str, str] = field(default_factory=dict)  # column -> referenced table
    serial: str | None = None  # an autoincrement key the store assigns


def _t(name: str, columns: str, key: str, *, required: str = "",
       defaults: Mapping[str, Any] | None = None, decimals: str = "", json: str = "",
       unique: tuple[str, ...] = (), foreign: Mapping[str, str] | None = None,
       serial: bool = False) -> TableSpec:
    keys = tuple(key.split())
    return TableSpec(
        name=name, columns=tuple(columns.split()), key=keys,
        required=frozenset(required.split()) - ({keys[0]} if serial else set()),
        defaults=dict(defaults or {}), decimals=frozenset(decimals.split()),
        json=frozenset(json.split()), unique=tuple(tuple(u.split()) for u in unique),
        foreign=dict(foreign or {}), serial=keys[0] if serial else None)


_TENANT = {"tenant_id": "tenants"}

SCHEMA: dict[str, TableSpec] = {t.name: t for t in (
    _t("tenants", "tenant_id name status created_at", "tenant_id",
       required="tenant_id name created_at", defaults={"status": "active"}),
    _t("users", "user_id tenant_id email role oidc_sub created_at", "user_id",
       required="user_id tenant_id email role created_at", unique=("oidc_sub",),
       foreign=_TENANT),
    _t("subscriptions", "subscription_id tenant_id plan_id status entitlements renewal_at "
       "created_at provider provider_ref customer_ref past_due_since last_event_at updated_at",
       "subscription_id", required="subscription_id tenant_id plan_id status entitlements "
       "created_at", defaults={"provider": "manual"}, json="entitlements",
       unique=("provider_ref",), foreign=_TENANT),
    _t("vaults", "vault_id tenant_id label rails personas risk_profile public maintenance "
       "created_at", "vault_id", required="vault_id tenant_id label rails personas "
       "risk_profile created_at", defaults={"public": False, "maintenance": False},
       json="rails personas risk_profile", foreign=_TENANT),
    _t("followers", "follower_id tenant_id vault_id label mode scale max_pos_usd kill_switch "
       "webhook_url hmac_key_ref bridged_brokers created_at updated_at scale_mode "
       "nav_multiplier fractional paused paused_reason protections plan_id overlay_opt_in "
       "webhook_keys webhook_disabled_at webhook_disabled_reason", "follower_id",
       required="follower_id tenant_id vault_id label mode scale created_at updated_at",
       defaults={"kill_switch": False, "scale_mode": "fixed", "nav_multiplier": Decimal(1),
                 "fractional": False, "paused": False, "plan_id": "core",
                 "overlay_opt_in": False},
       decimals="scale max_pos_usd nav_multiplier",
       json="bridged_brokers protections webhook_keys",
       foreign={**_TENANT, "vault_id": "vaults"}),
    _t("manager_orders", "mo_id tenant_id vault_id client_order_id source symbol venue side "
       "qty tif ref_price closes_position meta snapshot state created_at", "mo_id",
       required="mo_id tenant_id vault_id client_order_id source symbol venue side qty tif "
       "meta snapshot state created_at", defaults={"closes_position": False},
       decimals="qty ref_price", json="meta snapshot", unique=("vault_id client_order_id",),
       foreign={**_TENANT, "vault_id": "vaults"}),
    _t("follower_orders", "fo_id mo_id follower_id tenant_id vault_id symbol venue side qty "
       "cap_applied state skip_reason broker_order_ref dispatch_attempts last_error audit "
       "created_at updated_at filled_qty avg_fill_price dead_lettered_at", "fo_id",
       required="fo_id mo_id follower_id tenant_id vault_id symbol venue side qty state audit "
       "created_at updated_at",
       defaults={"cap_applied": False, "dispatch_attempts": 0, "filled_qty": Decimal(0)},
       decimals="qty filled_qty avg_fill_price", json="audit",
       foreign={**_TENANT, "mo_id": "manager_orders", "follower_id": "followers"}),
    _t("audit_events", "event_id seq tenant_id entity entity_id action actor payload ts "
       "prev_hash hash hash_v", "event_id", required="event_id seq entity entity_id action "
       "actor payload ts prev_hash hash", json="payload", unique=("seq",),
       defaults={"hash_v": 1}),
    _t("audit_chain_head", "id seq hash", "id", required="id seq hash"),
    _t("audit_leaves", "event_id idx tenant_id entity_id action record", "event_id idx",
       required="event_id idx entity_id action record",
       foreign={"event_id": "audit_events"}),
    _t("outbox", "id topic key payload created_at available_at locked_until attempts done_at",
       "id", required="topic key payload created_at available_at",
       defaults={"attempts": 0}, json="payload", unique=("key",), serial=True),
    _t("delivery_attempts", "id fo_id attempt_no started_at status_code latency_ms "
       "response_excerpt error outcome", "id",
       required="fo_id attempt_no started_at latency_ms outcome",
       foreign={"fo_id": "follower_orders"}, serial=True),
    _t("vault_overlays", "overlay_id tenant_id vault_id kind params actor applied_at "
       "expires_at reverted_at state", "overlay_id", required="overlay_id tenant_id vault_id "
       "kind params actor applied_at expires_at state", json="params",
       foreign={**_TENANT, "vault_id": "vaults"}),
    _t("nav_observations", "id tenant_id entity entity_id nav as_of source", "id",
       required="tenant_id entity entity_id nav as_of source", decimals="nav",
       foreign=_TENANT, serial=True),
    _t("instruments", "symbol venue lot_step min_qty min_notional fractional_step updated_at",
       "symbol venue", required="symbol venue lot_step min_qty min_notional updated_at",
       decimals="lot_step min_qty min_notional fractional_step"),
    _t("fills", "trade_id fo_id qty price ts recorded_at", "trade_id",
       required="trade_id fo_id qty price ts recorded_at", decimals="qty price",
       foreign={"fo_id": "follower_orders"}),
    _t("invitations", "invitation_id tenant_id email role token_hash created_by created_at "
       "expires_at accepted_at user_id", "invitation_id", required="invitation_id tenant_id "
       "email role token_hash created_by created_at expires_at", unique=("token_hash",),
       foreign=_TENANT),
    _t("billing_inbox", "inbox_id provider event_type received_at payload processed_at "
       "outcome tenant_id", "inbox_id", required="inbox_id provider event_type received_at payload",
       json="payload"),
    _t("follower_flows", "id tenant_id follower_id kind amount at", "id",
       required="tenant_id follower_id kind amount at", decimals="amount",
       foreign={**_TENANT, "follower_id": "followers"}, serial=True),
    _t("fee_ledger", "id tenant_id follower_id period_label period_end rate nav_start nav_end "
       "net_flows pnl fee hwm_before hwm_after invoice_provider invoice_ref created_at "
       "refunded", "id",
       required="tenant_id follower_id period_label period_end rate nav_start nav_end "
       "net_flows pnl fee hwm_before hwm_after created_at",
       decimals="rate nav_start nav_end net_flows pnl fee hwm_before hwm_after refunded",
       unique=("follower_id period_label",), foreign={**_TENANT, "follower_id": "followers"},
       serial=True),
    _t("studio_runs", "run_id tenant_id vault_id follower_id actor created_at request "
       "engine_version output_sha256 output", "run_id",
       required="run_id tenant_id vault_id actor created_at request engine_version "
       "output_sha256 output", json="request", foreign=_TENANT),
    _t("tenant_branding", "tenant_id display_name accent_color logo_type logo_data updated_at "
       "updated_by", "tenant_id", required="tenant_id display_name accent_color updated_at "
       "updated_by", foreign=_TENANT),
    _t("alert_channels", "channel_id tenant_id kind target secret_ref kinds created_at "
       "created_by", "channel_id", required="channel_id tenant_id kind target created_at "
       "created_by", json="kinds", foreign=_TENANT),
    _t("alerts", "alert_id tenant_id kind subject detail state created_at attempts next_at "
       "sent_at outcome", "alert_id", required="alert_id tenant_id kind subject detail "
       "created_at", defaults={"state": "pending", "attempts": 0}, json="detail outcome",
       foreign=_TENANT),
    _t("reconcile_thresholds", "vault_id follower_id tenant_id threshold_bps updated_at",
       "vault_id follower_id", required="vault_id follower_id tenant_id threshold_bps "
       "updated_at", foreign={**_TENANT, "vault_id": "vaults"}),
    _t("position_reports", "id tenant_id follower_id positions as_of received_at", "id",
       required="tenant_id follower_id positions as_of received_at", json="positions",
       foreign={**_TENANT, "follower_id": "followers"}, serial=True),
    _t("reconcile_runs", "run_id tenant_id vault_id dry_run actor created_at report", "run_id",
       required="run_id tenant_id vault_id dry_run actor created_at report", json="report",
       foreign={**_TENANT, "vault_id": "vaults"}),
    _t("venue_fee_models", "venue version model updated_at updated_by", "venue",
       required="venue version model updated_at updated_by", json="model"),
    _t("stablecoin_buffers", "tenant_id entity entity_id amount updated_at",
       "entity entity_id", required="tenant_id entity entity_id amount updated_at",
       decimals="amount", foreign=_TENANT),
    _t("child_legs", "leg_id fo_id tenant_id idx kind venue pair side amount filled state "
       "after_idx attempts reason context updated_at", "leg_id",
       required="leg_id fo_id tenant_id idx kind venue pair side amount filled state "
       "updated_at", defaults={"attempts": 0}, decimals="amount filled", json="context",
       foreign={**_TENANT, "fo_id": "follower_orders"}),
)}
