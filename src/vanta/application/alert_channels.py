"""The tenant's alert channels: where its operators hear about dead letters, disabled endpoints
and lost broker orders. A webhook channel is vetted like a follower's webhook (the same SSRF
policy) and signs with its own key, held in the secret store; an email channel needs the
server's SMTP settings."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from vanta.application.alerts import raise_alert
from vanta.application.clock import Clock, utcnow
from vanta.application.followers import validate_webhook_url, vet_url
from vanta.application.ports.alerts import AlertChannelRecord
from vanta.application.ports.delivery import TargetVetter
from vanta.application.ports.secrets import SecretStore
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.alerts import AlertKind
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.ids import new_id
from vanta.domain.webhook_signing import new_webhook_secret, standard_secret_string

__all__ = ["MAX_CHANNELS", "add_channel", "channel_json", "list_channels", "remove_channel",
           "send_test_alert"]

MAX_CHANNELS = 20  # per tenant: every alert goes to each of them
# Deliberately plain: one address, no display name, no spaces or line breaks (header safety).
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}"
                    r"@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+")


def _kinds(raw: Mapping[str, Any]) -> list[str] | None:
    kinds = raw.get("kinds")
    if kinds is None:
        return None
    known = {k.value for k in AlertKind}
    if not isinstance(kinds, list) or not kinds or any(k not in known for k in kinds):
        raise ValidationFailed(f"kinds must be a non-empty list of {sorted(known)}",
                               code="invalid_alert_kinds", field="kinds")
    return sorted(set(kinds))


def _email(value: object) -> str:
    if not isinstance(value, str) or len(value) > 254 or not _EMAIL.fullmatch(value):
        raise ValidationFailed("email must be one plain address (name@example.com)",
                               code="invalid_email", field="email")
    return value


async def add_channel(uow: UnitOfWork, secrets: SecretStore, *, tenant_id: str, raw: object,
                      actor: str, vetter: TargetVetter | None, email_enabled: bool,
                      clock: Clock = utcnow) -> tuple[AlertChannelRecord, str | None]:
    """Store a channel; returns it and, for a webhook, its signing secret (``whsec_…``),
    shown only this once."""
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be an object", code="invalid_alert_channel")
    kind, kinds = raw.get("kind"), _kinds(raw)
    channel_id, ref, secret = new_id(), None, None
    if kind == "webhook":
        target = validate_webhook_url(raw.get("url"))
        await vet_url(vetter, target, field="url", code="webhook_url_not_deliverable")
    elif kind == "email":
        if not email_enabled:  # the request is fine; the server is not set up for it
            raise Conflict("email alerts need the server's SMTP settings (VANTA_SMTP_HOST)",
                           code="email_not_configured")
        target = _email(raw.get("email"))
    else:
        raise ValidationFailed("kind must be webhook or email", code="invalid_alert_channel",
                               field="kind")
    if kind == "webhook":
        secret = new_webhook_secret()
        ref = secrets.put(f"alert-channel/{channel_id}", secret)
    now = clock()
    row = {"channel_id": channel_id, "tenant_id": tenant_id, "kind": kind, "target": target,
           "secret_ref": ref, "kinds": kinds, "created_at": now, "created_by": actor}
    try:
        async with uow:
            if len(await uow.alerts.channels(tenant_id)) >= MAX_CHANNELS:
                raise Conflict(f"at most {MAX_CHANNELS} alert channels per tenant",
                               code="too_many_alert_channels")
            await uow.alerts.add_channel(row)
            await uow.audit.append(entity="alert_channel", entity_id=channel_id,
                                   action="alert_channel_added", actor=actor,
                                   tenant_id=tenant_id,
                                   payload={"kind": kind, "target": target, "kinds": kinds})
            stored = await uow.alerts.get_channel(tenant_id, channel_id)
            await uow.commit()
    except BaseException:
        if ref is not None:
            secrets.delete(ref, missing_ok=True)
        raise
    assert stored is not None
    return stored, standard_secret_string(secret) if secret is not None else None


async def list_channels(uow: UnitOfWork, tenant_id: str) -> list[AlertChannelRecord]:
    async with uow:
        return await uow.alerts.channels(tenant_id)


async def remove_channel(uow: UnitOfWork, secrets: SecretStore, *, tenant_id: str,
                         channel_id: str, actor: str) -> None:
    async with uow:
        row = await uow.alerts.get_channel(tenant_id, channel_id)
        if row is None or not await uow.alerts.delete_channel(tenant_id, channel_id):
            raise NotFound(f"alert channel {channel_id} not found",
                           code="alert_channel_not_found")
        await uow.audit.append(entity="alert_channel", entity_id=channel_id,
                               action="alert_channel_removed", actor=actor,
                               tenant_id=tenant_id, payload={"kind": row.kind})
        await uow.commit()
    if row.secret_ref is not None:  # after the commit: a rollback keeps a working key
        secrets.delete(row.secret_ref, missing_ok=True)


async def send_test_alert(uow: UnitOfWork, *, tenant_id: str, channel_id: str, actor: str,
                          clock: Clock = utcnow) -> str:
    """Queue a test alert for this one channel (never held back); its id."""
    async with uow:
        if await uow.alerts.get_channel(tenant_id, channel_id) is None:
            raise NotFound(f"alert channel {channel_id} not found",
                           code="alert_channel_not_found")
        alert_id = await raise_alert(uow, tenant_id=tenant_id, kind=AlertKind.TEST,
                                     subject=channel_id, now=clock(),
                                     detail={"channel_id": channel_id, "requested_by": actor})
        await uow.commit()
    return alert_id


def channel_json(c: AlertChannelRecord) -> dict[str, Any]:
    """A channel as the API shows it (never its key or the key's reference)."""
    out: dict[str, Any] = {"channel_id": c.channel_id, "kind": c.kind, "kinds": c.kinds,
                           "created_at": c.created_at.isoformat(), "created_by": c.created_by}
    out["url" if c.kind == "webhook" else "email"] = c.target
    return out
