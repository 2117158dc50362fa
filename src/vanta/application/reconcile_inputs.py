"""What reconciliation is told: drift thresholds (per vault, per follower) and webhook
followers' own position reports. Both audited."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.navs import parse_as_of
from vanta.application.ports.reconciliation import ReconcileUnitOfWork
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.money import MAX_DECIMAL_PLACES, MAX_QTY, exponent_places, normalize, to_decimal
from vanta.domain.orders import parse_symbol
from vanta.domain.reconciliation import check_threshold

MAX_REPORTED_SYMBOLS = 1_000


def _object(raw: object, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("body must be a JSON object", code="invalid_body")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", code="unknown_field",
                               field=unknown[0])
    return raw


async def set_vault_threshold(uow: ReconcileUnitOfWork, *, tenant_id: str, vault_id: str,
                              raw: object, actor: str, clock: Clock = utcnow
                              ) -> dict[str, Any]:
    """``{"threshold_bps": N}`` for the vault; followers without an override use it."""
    body = _object(raw, {"threshold_bps"})
    if "threshold_bps" not in body:
        raise ValidationFailed("threshold_bps is required", code="missing_field",
                               field="threshold_bps")
    bps = check_threshold(body["threshold_bps"])
    async with uow:
        if await uow.vaults.get(tenant_id, vault_id) is None:
            raise NotFound(f"vault {vault_id} not found", code="vault_not_found")
        before = (await uow.reconciliations.thresholds(tenant_id, vault_id)).get("")
        await uow.reconciliations.set_threshold(tenant_id=tenant_id, vault_id=vault_id,
                                                follower_id="", threshold_bps=bps, now=clock())
        await uow.audit.append(entity="vault", entity_id=vault_id,
                               action="reconcile_threshold_set", actor=actor,
                               tenant_id=tenant_id,
                               payload={"before": before, "after": bps})
        await uow.commit()
    return {"vault_id": vault_id, "threshold_bps": bps}


async def set_follower_threshold(uow: ReconcileUnitOfWork, *, tenant_id: str,
                                 follower_id: str, raw: object, actor: str,
                                 clock: Clock = utcnow) -> dict[str, Any]:
    """``{"threshold_bps": N}`` overrides the vault's for one follower; ``null`` removes it."""
    body = _object(raw, {"threshold_bps"})
    if "threshold_bps" not in body:
        raise ValidationFailed("threshold_bps is required (null removes the override)",
                               code="missing_field", field="threshold_bps")
    bps = None if body["threshold_bps"] is None else check_threshold(body["threshold_bps"])
    async with uow:
        f = await uow.followers.get(tenant_id, follower_id)
        if f is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        current = await uow.reconciliations.thresholds(tenant_id, f.vault_id)
        await uow.reconciliations.set_threshold(tenant_id=tenant_id, vault_id=f.vault_id,
                                                follower_id=follower_id, threshold_bps=bps,
                                                now=clock())
        await uow.audit.append(entity="follower", entity_id=follower_id,
                               action="reconcile_threshold_set", actor=actor,
                               tenant_id=tenant_id,
                               payload={"before": current.get(follower_id), "after": bps})
        await uow.commit()
    effective = bps if bps is not None else current.get("")
    return {"follower_id": follower_id, "threshold_bps": bps,
            "effective_threshold_bps": effective}


def parse_positions(raw: object) -> dict[str, str]:
    if not isinstance(raw, Mapping):
        raise ValidationFailed("positions must be an object of symbol to quantity",
                               code="invalid_positions", field="positions")
    if len(raw) > MAX_REPORTED_SYMBOLS:
        raise ValidationFailed(f"at most {MAX_REPORTED_SYMBOLS} symbols per report",
                               code="invalid_positions", field="positions")
    out: dict[str, str] = {}
    for sym, qty in raw.items():
        symbol = parse_symbol(sym)
        if isinstance(qty, (bool, float)):
            raise ValidationFailed(f"the quantity of {symbol} must be a decimal string or an "
                                   "integer", code="invalid_quantity", field=f"positions.{symbol}")
        q = to_decimal(qty, field=f"positions.{symbol}", code="invalid_quantity")
        if abs(q) > MAX_QTY or exponent_places(q) > MAX_DECIMAL_PLACES:
            raise ValidationFailed(f"the quantity of {symbol} is out of range",
                                   code="invalid_quantity", field=f"positions.{symbol}")
        if q:
            out[symbol] = str(normalize(q))
    return out


async def report_positions(uow: ReconcileUnitOfWork, *, tenant_id: str, follower_id: str,
                           raw: object, actor: str, clock: Clock = utcnow) -> dict[str, Any]:
    """A webhook follower's holdings at ``as_of`` (default now): reconciliation trusts the
    newest report over the platform's own record. Bridged followers are read from their
    broker instead (``409 follower_is_bridged``)."""
    body = _object(raw, {"positions", "as_of"})
    if "positions" not in body:
        raise ValidationFailed("positions is required", code="missing_field",
                               field="positions")
    positions = parse_positions(body["positions"])
    now = clock()
    as_of = parse_as_of(body.get("as_of"), now)
    async with uow:
        f = await uow.followers.get(tenant_id, follower_id)
        if f is None:
            raise NotFound(f"follower {follower_id} not found", code="follower_not_found")
        if f.bridged_brokers:
            raise Conflict("this follower is bridged: its positions are read from its broker",
                           code="follower_is_bridged")
        await uow.reconciliations.add_position_report({
            "tenant_id": tenant_id, "follower_id": follower_id, "positions": positions,
            "as_of": as_of, "received_at": now})
        await uow.audit.append(entity="follower", entity_id=follower_id,
                               action="positions_reported", actor=actor, tenant_id=tenant_id,
                               payload={"positions": positions, "as_of": as_of.isoformat()})
        await uow.commit()
    return {"follower_id": follower_id, "positions": positions, "as_of": as_of.isoformat()}
