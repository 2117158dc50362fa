"""Registering followers and reading their settings for sizing."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.adapters.secrets.local import LocalSecretStore
from vanta.adapters.webhooks.signing import new_webhook_secret, standard_secret_string
from vanta.application.clock import Clock, utcnow
from vanta.domain.errors import NotFound, ValidationFailed
from vanta.domain.followers import (
    DeliveryKind,
    FollowerMode,
    FollowerSpec,
    parse_max_pos_usd,
    parse_mode,
    parse_scale,
)
from vanta.domain.ids import FollowerId, new_id

ALLOWED_FIELDS = frozenset({"label", "mode", "scale", "max_pos_usd", "kill_switch", "webhook",
                            "webhook_url"})


def follower_spec(row: Mapping[str, Any]) -> FollowerSpec:
    return FollowerSpec(
        follower_id=FollowerId(row["follower_id"]), mode=FollowerMode(row["mode"]),
        scale=row["scale"], max_pos_usd=row["max_pos_usd"], kill_switch=bool(row["kill_switch"]),
        delivery=DeliveryKind.WEBHOOK if row["webhook_url"] else DeliveryKind.BRIDGED,
    )


def spec_to_json(s: FollowerSpec) -> dict[str, Any]:
    return {"follower_id": s.follower_id, "mode": s.mode.value, "scale": str(s.scale),
            "max_pos_usd": None if s.max_pos_usd is None else str(s.max_pos_usd),
            "kill_switch": s.kill_switch, "delivery": s.delivery.value}


def spec_from_json(d: Mapping[str, Any]) -> FollowerSpec:
    cap = d.get("max_pos_usd")
    return FollowerSpec(
        follower_id=FollowerId(d["follower_id"]), mode=FollowerMode(d["mode"]),
        scale=Decimal(d["scale"]), max_pos_usd=None if cap is None else Decimal(cap),
        kill_switch=bool(d["kill_switch"]), delivery=DeliveryKind(d["delivery"]))


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


def parse_registration(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - ALLOWED_FIELDS)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    webhook = raw.get("webhook")
    url = raw.get("webhook_url")
    if isinstance(webhook, Mapping):
        url = webhook.get("url", url)
    if url is None:
        raise ValidationFailed("a webhook url is required (bridged brokers are not built yet)",
                               code="missing_field", field="webhook.url")
    cap = parse_max_pos_usd(raw.get("max_pos_usd"))
    kill = raw.get("kill_switch", False)
    if not isinstance(kill, bool):
        raise ValidationFailed("kill_switch must be true or false", code="invalid_boolean",
                               field="kill_switch")
    label = raw.get("label", "")
    if not isinstance(label, str) or len(label) > 200:
        raise ValidationFailed("label must be a string of at most 200 characters",
                               code="invalid_label", field="label")
    return {
        "label": label, "mode": parse_mode(raw.get("mode"), cap).value,
        "scale": parse_scale(raw.get("scale", 1)), "max_pos_usd": cap, "kill_switch": kill,
        "webhook_url": validate_webhook_url(url),
    }


async def register_follower(
    uow: SqlUnitOfWork, secrets: LocalSecretStore, *, tenant_id: str, vault_id: str,
    raw: object, actor: str, clock: Clock = utcnow,
) -> tuple[dict[str, Any], str]:
    """Returns the stored follower and its webhook secret (``whsec_…``), shown only once."""
    fields = parse_registration(raw)
    follower_id = new_id()
    secret = new_webhook_secret()
    # Written before the row that points at it: a crash leaves an orphan secret, never a
    # follower whose deliveries cannot be signed.
    ref = secrets.put(f"webhook/{follower_id}/v1", secret)
    now = clock()
    row = {"follower_id": follower_id, "tenant_id": tenant_id, "vault_id": vault_id,
           **fields, "hmac_key_ref": ref, "bridged_brokers": None,
           "created_at": now, "updated_at": now}
    async with uow:
        if await uow.vaults.get(tenant_id, vault_id) is None:
            secrets.delete(ref)
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        await uow.followers.add(row)
        await uow.audit.append(entity="follower", entity_id=follower_id, action="registered",
                               actor=actor, tenant_id=tenant_id,
                               payload={"vault_id": vault_id, "mode": fields["mode"],
                                        "scale": str(fields["scale"]),
                                        "max_pos_usd": None if fields["max_pos_usd"] is None
                                        else str(fields["max_pos_usd"]),
                                        "kill_switch": fields["kill_switch"],
                                        "webhook_url": fields["webhook_url"]})
        await uow.commit()
    return row, standard_secret_string(secret)
