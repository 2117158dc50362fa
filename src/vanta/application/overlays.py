"""Applying vault overlays, lifting maintenance, and reverting overlays when they expire."""

from __future__ import annotations

from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.ports.records_catalog import OverlayRecord
from vanta.application.ports.uow import UnitOfWork, UowFactory
from vanta.application.tenancy import require_feature
from vanta.domain.entitlements import Feature
from vanta.domain.errors import NotFound
from vanta.domain.ids import new_id
from vanta.domain.overlays import OverlayKind, parse_overlay_request


async def apply_overlay(uow: UnitOfWork, *, tenant_id: str, vault_id: str, raw: object,
                        actor: str, clock: Clock = utcnow) -> dict[str, Any]:
    req = parse_overlay_request(raw)
    now = clock()
    async with uow:
        vault = await uow.vaults.get_for_update(tenant_id, vault_id)
        if vault is None:
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        if "maintenance" in req:
            enabled = req["maintenance"]
            await uow.vaults.set_maintenance(tenant_id, vault_id, enabled)
            await uow.audit.append(entity="vault", entity_id=vault_id,
                                   action="maintenance_on" if enabled else "maintenance_off",
                                   actor=actor, tenant_id=tenant_id,
                                   payload={"before": vault.maintenance,
                                            "after": enabled})
            await uow.commit()
            return {"vault_id": vault_id, "maintenance": {"enabled": enabled}}
        await require_feature(uow, tenant_id, Feature.FLIP_MODE
                              if req["kind"] is OverlayKind.FLIP else Feature.PERSONA_BOOSTS)
        overlay_id = new_id()
        params = {"amplify": str(req["amplify"]), "persona": req["persona"]}
        row = {"overlay_id": overlay_id, "tenant_id": tenant_id, "vault_id": vault_id,
               "kind": req["kind"].value, "params": params, "actor": actor,
               "applied_at": now, "expires_at": now + req["ttl"], "reverted_at": None,
               "state": "active"}
        await uow.overlays.add(row)
        await uow.audit.append(entity="vault", entity_id=vault_id, action="overlay_applied",
                               actor=actor, tenant_id=tenant_id,
                               payload={"overlay_id": overlay_id, "kind": row["kind"],
                                        **params, "expires_at": row["expires_at"].isoformat()})
        await uow.commit()
    return overlay_json(OverlayRecord.from_row(row))


def overlay_json(rec: OverlayRecord) -> dict[str, Any]:
    return {"overlay_id": rec.overlay_id, "vault_id": rec.vault_id, "kind": rec.kind.value,
            "amplify": rec.params.get("amplify"), "persona": rec.params.get("persona"),
            "applied_at": rec.applied_at.isoformat(),
            "expires_at": rec.expires_at.isoformat(), "state": rec.state,
            "reverted_at": rec.reverted_at.isoformat() if rec.reverted_at else None}


async def revert_expired(uow_factory: UowFactory, *, clock: Clock = utcnow) -> int:
    """The scheduler's job: mark every overlay past its TTL reverted, with an audit event.
    Sizing also ignores expired overlays on its own, so a late scheduler never extends one."""
    now = clock()
    reverted = 0
    async with uow_factory() as uow:
        for row in await uow.overlays.due_for_revert(now):
            if await uow.overlays.mark_reverted(row.overlay_id, now):
                reverted += 1
                await uow.audit.append(
                    entity="vault", entity_id=row.vault_id, action="overlay_reverted",
                    actor="scheduler", tenant_id=row.tenant_id,
                    payload={"overlay_id": row.overlay_id, "kind": row.kind.value,
                             "expired_at": row.expires_at.isoformat()})
        await uow.commit()
    return reverted
