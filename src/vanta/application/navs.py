"""Recording NAV observations for vaults (the manager) and followers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.uow import UnitOfWork
from vanta.domain.errors import NotFound, ValidationFailed
from vanta.domain.navs import parse_nav


def parse_as_of(value: object, now: datetime) -> datetime:
    if value is None:
        return now
    if not isinstance(value, str):
        raise ValidationFailed("as_of must be an ISO 8601 timestamp", code="invalid_as_of",
                               field="as_of")
    try:
        ts = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed("as_of must be an ISO 8601 timestamp", code="invalid_as_of",
                               field="as_of") from None
    if ts.tzinfo is None:
        raise ValidationFailed("as_of needs a timezone", code="invalid_as_of", field="as_of")
    if ts > now:
        raise ValidationFailed("as_of may not be in the future", code="invalid_as_of",
                               field="as_of")
    return ts


async def record_nav(uow: UnitOfWork, *, tenant_id: str, entity: str, entity_id: str,
                     raw: object, actor: str, source: str = "api",
                     clock: Clock = utcnow) -> dict[str, object]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - {"nav", "as_of"})
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    if raw.get("nav") is None:
        raise ValidationFailed("nav is required", code="missing_field", field="nav")
    nav = parse_nav(raw["nav"])
    now = clock()
    as_of = parse_as_of(raw.get("as_of"), now)
    async with uow:
        if entity == "vault":
            found = await uow.vaults.get(tenant_id, entity_id) is not None
        else:
            found = await uow.followers.get(tenant_id, entity_id) is not None
        if not found:
            raise NotFound(f"{entity} {entity_id} not found", code=f"{entity}_not_found")
        await uow.navs.add({"tenant_id": tenant_id, "entity": entity, "entity_id": entity_id,
                            "nav": nav, "as_of": as_of, "source": source})
        await uow.audit.append(entity=entity, entity_id=entity_id, action="nav_recorded",
                               actor=actor, tenant_id=tenant_id,
                               payload={"nav": str(nav), "as_of": as_of.isoformat()})
        await uow.commit()
    return {"entity": entity, "entity_id": entity_id, "nav": str(nav),
            "as_of": as_of.isoformat()}
