"""Registering, changing and reading followers."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from vanta.application.bridged import BRIDGE_URL_FIELDS, parse_bridge
from vanta.application.clock import Clock, utcnow
from vanta.application.plans import (
    can_bring_signing_key,
    follower_rights,
    require_mode_allowed,
)
from vanta.application.ports.delivery import TargetNotDeliverable, TargetVetter
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.secrets import SecretStore
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.followers import (
    DeliveryKind,
    FollowerMode,
    FollowerSpec,
    Protections,
    parse_max_pos_usd,
    parse_mode,
    parse_protections,
    parse_scale,
    parse_scale_mode,
)
from vanta.domain.ids import FollowerId, new_id
from vanta.domain.webhook_signing import new_webhook_secret, standard_secret_string

SETTING_FIELDS = frozenset({"label", "mode", "scale", "max_pos_usd", "kill_switch",
                            "scale_mode", "nav_multiplier", "fractional", "protections",
                            "plan", "overlay_opt_in", "paused"})
REGISTER_FIELDS = SETTING_FIELDS | {"webhook", "webhook_url", "sync", "bridged"}
PATCH_FIELDS = SETTING_FIELDS | {"webhook"}
MAX_OVERLAP = timedelta(days=7)
PLANS = ("core", "pro", "institutional")
# paused_reason of a follower that left its vault (application/unfollow.py): it gets no new
# children and its settings no longer change
UNFOLLOWED = "unfollowed"


def follower_spec(rec: FollowerRecord) -> FollowerSpec:
    flip, persona = follower_rights(rec.plan_id, rec.overlay_opt_in)
    return FollowerSpec(
        follower_id=FollowerId(rec.follower_id), mode=rec.mode,
        scale=rec.scale, max_pos_usd=rec.max_pos_usd, kill_switch=rec.kill_switch,
        delivery=DeliveryKind.WEBHOOK if rec.webhook_url else DeliveryKind.BRIDGED,
        scale_mode=rec.scale_mode, nav_multiplier=rec.nav_multiplier,
        fractional=rec.fractional, paused=rec.paused,
        protections=Protections.from_json(rec.protections),
        flip_allowed=flip, persona_allowed=persona,
    )


def validate_webhook_url(value: object) -> str:
    if not isinstance(value, str) or len(value) > 2048:
        raise ValidationFailed("webhook url must be a string", code="invalid_webhook_url",
                               field="webhook.url")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("webhook url must be an absolute http(s) URL",
                               code="invalid_webhook_url", field="webhook.url")
    if parts.username or parts.password:
        raise ValidationFailed("webhook url must not carry credentials",
                               code="invalid_webhook_url", field="webhook.url")
    return value


async def vet_url(vetter: TargetVetter | None, url: str, *, field: str, code: str) -> None:
    """Refuse a URL the sender would refuse at every send (private, loopback, metadata,
    a name that does not resolve), unless the operator's allowlist admits it."""
    if vetter is None:
        return
    try:
        await vetter.vet(url)
    except TargetNotDeliverable as e:
        why = f"{e.reason} ({e.detail})" if e.detail else e.reason
        raise ValidationFailed(f"{field} can never be delivered to: {why}", code=code,
                               field=field) from None


async def _vet_registration(vetter: TargetVetter | None, fields: Mapping[str, Any]) -> None:
    if fields["webhook_url"] is not None:
        await vet_url(vetter, fields["webhook_url"], field="webhook.url",
                      code="webhook_url_not_deliverable")
    if fields["bridge"] is not None:
        for key, value in fields["bridge"][1].items():
            if key in BRIDGE_URL_FIELDS:
                await vet_url(vetter, value, field=f"bridged.credentials.{key}",
                              code="broker_url_not_deliverable")


def _bool(raw: Mapping[str, Any], key: str, default: bool) -> bool:
    v = raw.get(key, default)
    if not isinstance(v, bool):
        raise ValidationFailed(f"{key} must be true or false", code="invalid_boolean", field=key)
    return v


def check_fields(raw: object, allowed: frozenset[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    return raw


def parse_settings(raw: Mapping[str, Any], current: FollowerRecord | None) -> dict[str, Any]:
    """Validate settings; with ``current`` (a PATCH) absent keys keep their stored value."""
    def pick(key: str, default: Any) -> Any:
        if key in raw:
            return raw[key]
        return getattr(current, key) if current is not None else default

    out: dict[str, Any] = {}
    label = pick("label", "")
    if not isinstance(label, str) or len(label) > 200:
        raise ValidationFailed("label must be a string of at most 200 characters",
                               code="invalid_label", field="label")
    out["label"] = label
    out["scale"] = parse_scale(raw["scale"]) if "scale" in raw else (
        current.scale if current is not None else Decimal(1))
    if "max_pos_usd" in raw:
        out["max_pos_usd"] = parse_max_pos_usd(raw["max_pos_usd"])
    else:
        out["max_pos_usd"] = current.max_pos_usd if current is not None else None
    mode_raw = raw.get("mode")
    if mode_raw is None and current is not None:
        mode_raw = current.mode.value
        if "max_pos_usd" in raw and out["max_pos_usd"] is not None and \
                mode_raw == FollowerMode.PROPORTIONAL.value:
            mode_raw = FollowerMode.CAPPED.value  # setting a cap turns capping on
        if out["max_pos_usd"] is None and mode_raw == FollowerMode.CAPPED.value:
            mode_raw = None if "max_pos_usd" in raw else mode_raw
    out["mode"] = parse_mode(mode_raw, out["max_pos_usd"]).value
    out["kill_switch"] = _bool(raw, "kill_switch",
                               current.kill_switch if current else False)
    out["paused"] = _bool(raw, "paused", current.paused if current else False)
    out["scale_mode"] = parse_scale_mode(pick("scale_mode", "fixed")).value
    out["nav_multiplier"] = parse_scale(raw["nav_multiplier"], "nav_multiplier") \
        if "nav_multiplier" in raw else (current.nav_multiplier if current else Decimal(1))
    out["fractional"] = _bool(raw, "fractional", current.fractional if current else False)
    if "protections" in raw:
        out["protections"] = parse_protections(raw["protections"]).to_json()
    else:
        out["protections"] = current.protections if current else Protections().to_json()
    plan = raw.get("plan", current.plan_id if current else "core")
    if plan not in PLANS:
        raise ValidationFailed(f"plan must be one of {', '.join(PLANS)}", code="invalid_plan",
                               field="plan")
    out["plan_id"] = plan
    out["overlay_opt_in"] = _bool(raw, "overlay_opt_in",
                                  current.overlay_opt_in if current else False)
    require_mode_allowed(plan, out["mode"])
    return out


def parse_registration(raw: object) -> dict[str, Any]:
    body = check_fields(raw, REGISTER_FIELDS)
    webhook = body.get("webhook")
    url = body.get("webhook_url")
    if isinstance(webhook, Mapping):
        url = webhook.get("url", url)
    bridge = parse_bridge(body["bridged"]) if body.get("bridged") is not None else None
    if (url is None) == (bridge is None):
        raise ValidationFailed("give either a webhook url or a bridged broker account",
                               code="missing_field", field="webhook.url")
    settings = parse_settings({k: v for k, v in body.items()
                               if k not in ("webhook", "webhook_url", "sync", "bridged")}, None)
    return {**settings, "webhook_url": None if url is None else validate_webhook_url(url),
            "bridge": bridge, "sync": _bool(body, "sync", False)}


def _webhook_changes(raw: object) -> dict[str, Any]:
    """``{"url": ...}`` points deliveries elsewhere; ``{"enabled": true}`` lifts a 410
    disable. Either way the endpoint is enabled again; dead letters are not resent by this,
    an operator redelivers them."""
    if not isinstance(raw, Mapping) or not raw or set(raw) - {"url", "enabled"}:
        raise ValidationFailed("webhook takes url and/or enabled", code="invalid_webhook",
                               field="webhook")
    out: dict[str, Any] = {}
    if "url" in raw:
        out["webhook_url"] = validate_webhook_url(raw["url"])
    if raw.get("enabled", True) is not True:
        raise ValidationFailed("only enabled: true can be set; a receiver disables with 410",
                               code="invalid_webhook", field="webhook.enabled")
    out["webhook_disabled_at"] = None
    out["webhook_disabled_reason"] = None
    return out


_AUDITED = ("label", "mode", "scale", "max_pos_usd", "kill_switch", "paused", "scale_mode",
            "nav_multiplier", "fractional", "protections", "plan_id", "overlay_opt_in",
            "webhook_url", "webhook_disabled_at")


def _audit_view(row: Mapping[str, Any]) -> dict[str, Any]:
    return {k: (str(row[k]) if isinstance(row.get(k), Decimal | datetime) else row.get(k))
            for k in _AUDITED}


def _settings_of(rec: FollowerRecord) -> dict[str, Any]:
    """The audited settings of a stored follower, as the columns hold them."""
    return {k: (v.value if isinstance(v, Enum) else v)
            for k, v in ((k, getattr(rec, k)) for k in _AUDITED)}


async def register_follower(
    uow: UnitOfWork, secrets: SecretStore, *, tenant_id: str, vault_id: str,
    raw: object, actor: str, clock: Clock = utcnow, vetter: TargetVetter | None = None,
) -> tuple[FollowerRecord, str]:
    """Returns the stored follower and its webhook secret (``whsec_…``), shown only once.

    With a ``vetter``, a webhook or broker URL that could never be reached is refused
    (``webhook_url_not_deliverable`` / ``broker_url_not_deliverable``) before anything is
    written; without one (the demo seed), the caller vouches for the URLs."""
    fields = parse_registration(raw)
    await _vet_registration(vetter, fields)
    fields.pop("sync")
    bridge = fields.pop("bridge")
    follower_id = new_id()
    secret = new_webhook_secret()
    # Written before the row that points at them: a crash leaves an orphan secret, never a
    # follower whose deliveries cannot be signed or placed.
    ref = secrets.put(f"webhook/{follower_id}/v1", secret)
    bridged = None
    if bridge is not None:
        broker, creds = bridge
        bridged = {"broker": broker,
                   "ref": secrets.put(f"broker/{follower_id}/{broker}",
                                      json.dumps(creds).encode())}
    now = clock()
    row = {"follower_id": follower_id, "tenant_id": tenant_id, "vault_id": vault_id,
           **fields, "hmac_key_ref": ref, "bridged_brokers": bridged, "paused_reason": None,
           "created_at": now, "updated_at": now}
    try:
        async with uow:
            if await uow.vaults.get(tenant_id, vault_id) is None:
                raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
            await uow.followers.add(row)
            await uow.audit.append(entity="follower", entity_id=follower_id,
                                   action="registered", actor=actor, tenant_id=tenant_id,
                                   payload={"vault_id": vault_id, "after": _audit_view(row)})
            # read back: the stored record, with the columns the database defaulted
            stored = await uow.followers.get(tenant_id, follower_id)
            await uow.commit()
    except BaseException:
        secrets.delete(ref, missing_ok=True)
        if bridged is not None:
            secrets.delete(bridged["ref"], missing_ok=True)
        raise
    assert stored is not None  # added in this very transaction
    return stored, standard_secret_string(secret)


async def patch_follower(
    uow: UnitOfWork, *, tenant_id: str, follower_id: str, raw: object, actor: str,
    clock: Clock = utcnow, vetter: TargetVetter | None = None,
) -> FollowerRecord:
    """Change settings; the audit event carries the settings before and after. A new
    webhook url is vetted (see ``register_follower``) before the transaction opens, so no
    lookup runs while it is held."""
    body = check_fields(raw, PATCH_FIELDS)
    if not body:
        raise ValidationFailed("nothing to change", code="empty_patch")
    webhook = body.get("webhook")
    if isinstance(webhook, Mapping) and "url" in webhook and \
            not set(webhook) - {"url", "enabled"}:
        await vet_url(vetter, validate_webhook_url(webhook["url"]), field="webhook.url",
                      code="webhook_url_not_deliverable")
    async with uow:
        current = await uow.followers.get(tenant_id, follower_id)
        if current is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        if current.paused_reason == UNFOLLOWED:
            raise Conflict(f"follower {follower_id} has unfollowed its vault",
                           code="follower_unfollowed")
        changes = parse_settings({k: v for k, v in body.items() if k != "webhook"}, current)
        if "webhook" in body:
            changes.update(_webhook_changes(body["webhook"]))
        if "paused" in body and not body["paused"]:
            changes["paused_reason"] = None
        elif body.get("paused"):
            changes["paused_reason"] = "manual"
        changes["updated_at"] = clock()
        await uow.followers.update(tenant_id, follower_id, **changes)
        before = _settings_of(current)
        await uow.audit.append(entity="follower", entity_id=follower_id, action="updated",
                               actor=actor, tenant_id=tenant_id,
                               payload={"before": _audit_view(before),
                                        "after": _audit_view({**before, **changes}),
                                        "changed": sorted(body)})
        after = await uow.followers.get(tenant_id, follower_id)
        await uow.commit()
    assert after is not None  # updated in this very transaction
    return after


async def rotate_webhook_secret(
    uow: UnitOfWork, secrets: SecretStore, *, tenant_id: str, follower_id: str,
    raw: object, actor: str, clock: Clock = utcnow,
) -> dict[str, Any]:
    """A new signing key takes over at once; the previous one keeps signing too until the
    overlap ends, so receivers can switch without a gap. Institutional plans may bring
    their own key (a dedicated signing key) instead of a generated one."""
    body = check_fields(raw if raw is not None else {}, frozenset({"overlap_seconds",
                                                                   "secret"}))
    overlap_raw = body.get("overlap_seconds", 86_400)
    if isinstance(overlap_raw, bool) or not isinstance(overlap_raw, int | float | Decimal) or \
            not 0 <= overlap_raw <= MAX_OVERLAP.total_seconds():
        raise ValidationFailed("overlap_seconds must be between 0 and 604800",
                               code="invalid_overlap", field="overlap_seconds")
    now = clock()
    not_after = now + timedelta(seconds=float(overlap_raw))
    async with uow:
        row = await uow.followers.get(tenant_id, follower_id)
        if row is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        if "secret" in body:
            decision = can_bring_signing_key(row.plan_id)
            if not decision:
                raise ValidationFailed("bringing a dedicated signing key needs the "
                                       "Institutional plan", code="plan_lacks_feature",
                                       field="secret")
            new_secret = parse_whsec(body["secret"])
        else:
            new_secret = new_webhook_secret()
        keys = [k for k in (row.webhook_keys or [])
                if k.get("not_after") is None or datetime.fromisoformat(k["not_after"]) > now]
        version = 1 + len(row.webhook_keys or []) + 1
        ref = secrets.put(f"webhook/{follower_id}/v{version}-{new_id()[:8]}", new_secret)
        if overlap_raw > 0:
            keys.append({"ref": row.hmac_key_ref, "not_after": not_after.isoformat()})
        await uow.followers.update(tenant_id, follower_id, hmac_key_ref=ref, webhook_keys=keys,
                                   updated_at=now)
        await uow.audit.append(entity="follower", entity_id=follower_id,
                               action="webhook_secret_rotated", actor=actor,
                               tenant_id=tenant_id,
                               payload={"previous_valid_until": not_after.isoformat()
                                        if overlap_raw > 0 else None,
                                        "dedicated": "secret" in body})
        await uow.commit()
    return {"follower_id": follower_id, "webhook_secret": standard_secret_string(new_secret),
            "previous_valid_until": not_after.isoformat() if overlap_raw > 0 else None}


def parse_whsec(value: object) -> bytes:
    if not isinstance(value, str) or not value.startswith("whsec_"):
        raise ValidationFailed("secret must be whsec_ followed by base64", code="invalid_secret",
                               field="secret")
    try:
        key = base64.b64decode(value[len("whsec_"):], validate=True)
    except ValueError:
        raise ValidationFailed("secret must be whsec_ followed by base64",
                               code="invalid_secret", field="secret") from None
    if not 24 <= len(key) <= 64:
        raise ValidationFailed("secret must be 24 to 64 bytes", code="invalid_secret",
                               field="secret")
    return key
