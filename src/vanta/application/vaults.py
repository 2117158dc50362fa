"""Creating and changing vaults: the plan's vault count limits creation."""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.followers import check_fields
from vanta.application.ports.records_catalog import VaultRecord
from vanta.application.ports.uow import UnitOfWork
from vanta.application.tenancy import tenant_entitlements
from vanta.domain.entitlements import can_add_vault
from vanta.domain.errors import Conflict, NotEntitled, NotFound, ValidationFailed
from vanta.domain.ids import new_id

PERSONAS = ("Athena", "Apollo", "Ares", "Nemesis")
STYLES = ("conservative", "balanced", "aggressive")
VAULT_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
SETTING_FIELDS = frozenset({"label", "public", "personas", "risk_profile", "rails"})
CREATE_FIELDS = SETTING_FIELDS | {"vault_id"}
DEFAULTS: dict[str, Any] = {
    "label": "", "public": False, "personas": ["Athena"],
    "risk_profile": {"max_drawdown_pct": 12, "style": "balanced"},
    "rails": {"fiat": True, "crypto": True}}


def _risk_profile(raw: object) -> dict[str, Any]:
    if not isinstance(raw, Mapping) or set(raw) - {"max_drawdown_pct", "style"}:
        raise ValidationFailed("risk_profile takes max_drawdown_pct and style",
                               code="invalid_risk_profile", field="risk_profile")
    out: dict[str, Any] = {}
    if "max_drawdown_pct" in raw:
        v = raw["max_drawdown_pct"]
        try:
            pct = Decimal(str(v)) if not isinstance(v, bool) else Decimal("NaN")
        except InvalidOperation:
            pct = Decimal("NaN")
        if not pct.is_finite() or not 0 < pct < 100:
            raise ValidationFailed("max_drawdown_pct must be above 0 and below 100",
                                   code="invalid_risk_profile",
                                   field="risk_profile.max_drawdown_pct")
        # stored as JSON: an exact string unless it is a whole number
        out["max_drawdown_pct"] = int(pct) if pct == pct.to_integral_value() else str(pct)
    if "style" in raw:
        if raw["style"] not in STYLES:
            raise ValidationFailed(f"style must be one of {', '.join(STYLES)}",
                                   code="invalid_risk_profile", field="risk_profile.style")
        out["style"] = raw["style"]
    return out


def parse_vault_settings(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Validate the settings present in ``raw`` (absent keys are not returned)."""
    out: dict[str, Any] = {}
    if "label" in raw:
        if not isinstance(raw["label"], str) or len(raw["label"]) > 200:
            raise ValidationFailed("label must be a string of at most 200 characters",
                                   code="invalid_label", field="label")
        out["label"] = raw["label"]
    if "public" in raw:
        if not isinstance(raw["public"], bool):
            raise ValidationFailed("public must be true or false", code="invalid_boolean",
                                   field="public")
        out["public"] = raw["public"]
    if "personas" in raw:
        p = raw["personas"]
        if not isinstance(p, list) or not p or any(x not in PERSONAS for x in p) or \
                len(set(p)) != len(p):
            raise ValidationFailed(f"personas must be distinct names from "
                                   f"{', '.join(PERSONAS)}", code="unknown_persona",
                                   field="personas")
        out["personas"] = list(p)
    if "risk_profile" in raw:
        out["risk_profile"] = _risk_profile(raw["risk_profile"])
    if "rails" in raw:
        r = raw["rails"]
        if not isinstance(r, Mapping) or set(r) - {"fiat", "crypto"} or \
                any(not isinstance(v, bool) for v in r.values()):
            raise ValidationFailed("rails takes fiat and crypto, each true or false",
                                   code="invalid_rails", field="rails")
        out["rails"] = dict(r)
    return out


def _view(r: Mapping[str, Any]) -> dict[str, Any]:
    return {k: r.get(k) for k in sorted(SETTING_FIELDS)}


def _record_view(v: VaultRecord) -> dict[str, Any]:
    return {"label": v.label, "public": v.public, "personas": list(v.personas),
            "risk_profile": dict(v.risk_profile), "rails": dict(v.rails)}


async def add_vault(uow: UnitOfWork, *, tenant_id: str, raw: object, actor: str,
                    clock: Clock = utcnow) -> VaultRecord:
    """A new vault, if the tenant's plan has room for one more (counted in the same
    transaction that adds it)."""
    body = check_fields(raw, CREATE_FIELDS)
    vid = body.get("vault_id")
    if vid is not None and (not isinstance(vid, str) or not VAULT_ID.match(vid)):
        raise ValidationFailed("vault_id must be 1 to 64 letters, digits, _ or -",
                               code="invalid_vault_id", field="vault_id")
    settings = parse_vault_settings(body)
    risk = {**DEFAULTS["risk_profile"], **settings.pop("risk_profile", {})}
    rails = {**DEFAULTS["rails"], **settings.pop("rails", {})}
    row = {**DEFAULTS, **settings, "risk_profile": risk, "rails": rails}
    vault_id = vid or new_id()
    async with uow:
        if await uow.vaults.get(tenant_id, vault_id) is not None:
            raise Conflict(f"vault {vault_id} already exists", code="vault_exists")
        count = len(await uow.vaults.list(tenant_id))
        decision = can_add_vault(await tenant_entitlements(uow, tenant_id), count)
        if not decision.allowed:
            raise NotEntitled(f"the tenant's plan allows {decision.limit} vault(s)",
                              code=decision.reason)
        await uow.vaults.add({"vault_id": vault_id, "tenant_id": tenant_id, **row,
                              "maintenance": False, "created_at": clock()})
        await uow.audit.append(entity="vault", entity_id=vault_id, action="created",
                               actor=actor, tenant_id=tenant_id,
                               payload={"after": _view(row)})
        stored = await uow.vaults.get(tenant_id, vault_id)
        await uow.commit()
    assert stored is not None  # added in this very transaction
    return stored


async def patch_vault(uow: UnitOfWork, *, tenant_id: str, vault_id: str, raw: object,
                      actor: str) -> VaultRecord:
    """Change settings; the audit event carries them before and after."""
    body = check_fields(raw, SETTING_FIELDS)
    if not body:
        raise ValidationFailed("nothing to change", code="empty_patch")
    changes = parse_vault_settings(body)
    async with uow:
        current = await uow.vaults.get_for_update(tenant_id, vault_id)
        if current is None:
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        before = _record_view(current)
        if "risk_profile" in changes:  # a partial profile changes only the keys it names
            changes["risk_profile"] = {**before["risk_profile"], **changes["risk_profile"]}
        if "rails" in changes:
            changes["rails"] = {**before["rails"], **changes["rails"]}
        await uow.vaults.update(tenant_id, vault_id, **changes)
        await uow.audit.append(entity="vault", entity_id=vault_id, action="updated",
                               actor=actor, tenant_id=tenant_id,
                               payload={"before": _view(before),
                                        "after": _view({**before, **changes}),
                                        "changed": sorted(body)})
        after = await uow.vaults.get(tenant_id, vault_id)
        await uow.commit()
    assert after is not None
    return after
