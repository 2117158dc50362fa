"""Cross-rail settings and quotes: venue fee models, stablecoin buffers, route quotes.

* Fee models start from ``DEFAULT_FEE_MODELS`` (version 0). A platform admin replaces one
  venue's model as a whole; each replacement is the next version, stored with a
  compare-and-set on the version it replaced and audited with the previous model, so the
  audit log holds every version.
* The stablecoin buffer is a default per vault and, for followers on the Institutional plan,
  an override per follower. No buffer set means zero.
* A quote runs the router for one follower over its linked venues and current fee models:
  a pure read, nothing stored, nothing dispatched.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Final

from vanta.application.clock import Clock, iso, utcnow
from vanta.application.followers import check_fields
from vanta.application.ports.crossrail import CrossRailUnitOfWork
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.domain.errors import Conflict, NotFound, ValidationFailed
from vanta.domain.money import MAX_PRICE, MAX_QTY, exponent_places, normalize, to_decimal
from vanta.domain.routing import RouteDecision, RouteRequest, choose_route, pair_known
from vanta.domain.venues import (
    DEFAULT_FEE_MODELS,
    FIAT,
    KNOWN_VENUES,
    STABLECOIN,
    VenueFees,
    known_venue,
    linked_venues,
    parse_fee_model,
)

MAX_BUFFER: Final = Decimal(1_000_000_000)
BUFFER_PLACES: Final = 6  # USDC's own precision
DEFAULT_LATENCY_BUDGET_MS: Final = 2_000
PUT_ATTEMPTS: Final = 3  # reads again after a lost race, then gives up with 409
QUOTE_FIELDS: Final = frozenset({"symbol", "side", "qty", "price", "usd_balance",
                                 "usdc_balance", "latency_budget_ms", "venues"})


async def fee_models(uow: CrossRailUnitOfWork) -> dict[str, VenueFees]:
    """Every known venue's current model (the built-in one until an admin replaces it)."""
    out = dict(DEFAULT_FEE_MODELS)
    for rec in await uow.venue_fees.list():
        if rec.venue in out:
            out[rec.venue] = rec.fees()
    return out


async def put_fee_model(uow: CrossRailUnitOfWork, *, venue: str, raw: object, actor: str,
                        tenant_id: str, clock: Clock = utcnow) -> VenueFees:
    """Replace one venue's model. A PUT carries the whole model, so an edit that loses a
    race (another admin's edit, or the first edit of the venue, landed meanwhile) is read
    again and applied as the next version: both edits are kept in the audit, in order."""
    name = known_venue(venue)
    for _ in range(PUT_ATTEMPTS):
        saved = await _put_once(uow, name, raw, actor, tenant_id, clock)
        if saved is not None:
            return saved
    raise Conflict(f"the {name} fee model kept changing meanwhile; try again",
                   code="fee_model_conflict")


async def _put_once(uow: CrossRailUnitOfWork, name: str, raw: object, actor: str,
                    tenant_id: str, clock: Clock) -> VenueFees | None:
    async with uow:
        stored = await uow.venue_fees.get(name)
        previous = stored.fees() if stored is not None else DEFAULT_FEE_MODELS[name]
        model = parse_fee_model(name, raw, version=previous.version + 1)
        row = {"venue": name, "version": model.version, "model": model.to_json(),
               "updated_at": clock(), "updated_by": actor}
        if not await uow.venue_fees.put(row, expect_version=None if stored is None
                                        else stored.version):
            return None  # rolled back on leaving; the caller reads again
        await uow.audit.append(entity="venue_fee_model", entity_id=name,
                               action="fee_model_updated", actor=actor, tenant_id=tenant_id,
                               payload={"version": model.version, "model": model.to_json(),
                                        "previous": previous.to_json()})
        await uow.commit()
    return model


def parse_buffer(raw: object) -> Decimal:
    body = check_fields(raw, frozenset({"amount"}))
    if "amount" not in body:
        raise ValidationFailed("amount is required", code="missing_field", field="amount")
    amount = to_decimal(body["amount"], field="amount", code="invalid_buffer")
    if amount < 0:
        raise ValidationFailed("the stablecoin buffer may not be negative",
                               code="invalid_buffer", field="amount")
    if amount > MAX_BUFFER or exponent_places(amount) > BUFFER_PLACES:
        raise ValidationFailed("amount must be at most 1000000000 USDC with at most 6 "
                               "decimal places", code="invalid_buffer", field="amount")
    return normalize(amount)


def buffer_json(entity: str, entity_id: str, amount: Decimal, source: str) -> dict[str, Any]:
    return {"entity": entity, "entity_id": entity_id, "amount": str(normalize(amount)),
            "currency": STABLECOIN, "source": source}


async def set_buffer(uow: CrossRailUnitOfWork, *, tenant_id: str, entity: str,
                     entity_id: str, raw: object, actor: str,
                     clock: Clock = utcnow) -> dict[str, Any]:
    """Set a vault's default buffer or an Institutional follower's override."""
    amount = parse_buffer(raw)
    async with uow:
        if entity == "vault":
            if await uow.vaults.get(tenant_id, entity_id) is None:
                raise NotFound(f"vault {entity_id} not found", code="vault_not_found")
        else:
            follower = await uow.followers.get(tenant_id, entity_id)
            if follower is None:
                raise NotFound(f"follower {entity_id} not found", code="follower_not_found")
            if follower.plan_id != "institutional":
                raise ValidationFailed("a per-follower stablecoin buffer needs the "
                                       "Institutional plan", code="plan_lacks_feature",
                                       field="amount")
        before = await uow.buffers.get(tenant_id, entity, entity_id)
        await uow.buffers.put({"tenant_id": tenant_id, "entity": entity,
                               "entity_id": entity_id, "amount": amount,
                               "updated_at": clock()})
        await uow.audit.append(entity=entity, entity_id=entity_id,
                               action="stablecoin_buffer_set", actor=actor, tenant_id=tenant_id,
                               payload={"amount": str(amount), "previous":
                                        None if before is None else str(normalize(before)),
                                        "at": iso(clock())})
        await uow.commit()
    return buffer_json(entity, entity_id, amount, entity)


async def effective_buffer(uow: CrossRailUnitOfWork, follower: FollowerRecord
                           ) -> tuple[Decimal, str]:
    """(amount, where it comes from): the follower's override (Institutional plan only),
    else the vault's default, else none. Call inside an open unit of work."""
    if follower.plan_id == "institutional":
        own = await uow.buffers.get(follower.tenant_id, "follower", follower.follower_id)
        if own is not None:
            return own, "follower"
    vault = await uow.buffers.get(follower.tenant_id, "vault", follower.vault_id)
    return (vault, "vault") if vault is not None else (Decimal(0), "none")


def _base_symbol(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationFailed("symbol is required, e.g. BTC", code="unknown_pair",
                               field="symbol")
    s = raw.strip().upper().replace("/", "-")
    for quote in (f"-{STABLECOIN}", f"-{FIAT}"):
        s = s.removesuffix(quote)
    return s


def _amount(body: Mapping[str, Any], key: str, *, default: str | None = None,
            positive: bool = False, limit: Decimal = MAX_QTY * MAX_PRICE) -> Decimal:
    if key not in body and default is not None:
        return Decimal(default)
    if key not in body:
        raise ValidationFailed(f"{key} is required", code="missing_field", field=key)
    d = to_decimal(body[key], field=key, code="invalid_number")
    if d < 0 or (positive and d == 0) or d > limit or exponent_places(d) > 12:
        raise ValidationFailed(f"{key} must be {'above' if positive else 'at least'} 0 "
                               f"and at most {limit}", code="invalid_number", field=key)
    return d


def _venues(body: Mapping[str, Any], follower: FollowerRecord) -> tuple[str, ...]:
    broker = (follower.bridged_brokers or {}).get("broker")
    linked = linked_venues(None if broker is None else str(broker))
    if "venues" not in body:
        return linked
    raw = body["venues"]
    if not isinstance(raw, list) or not raw:
        raise ValidationFailed("venues must list venue names", code="unknown_venue",
                               field="venues")
    names = []
    for v in raw:
        name = v.strip().lower() if isinstance(v, str) else ""
        if name not in KNOWN_VENUES:
            raise ValidationFailed(f"unknown venue {str(v)[:40]!r}; known: "
                                   f"{', '.join(KNOWN_VENUES)}", code="unknown_venue",
                                   field="venues")
        if name not in linked:
            raise ValidationFailed(f"the follower is not linked to {name}",
                                   code="venue_not_linked", field="venues")
        names.append(name)
    return tuple(names)


async def quote_route(uow: CrossRailUnitOfWork, *, tenant_id: str, follower: FollowerRecord,
                      raw: object) -> dict[str, Any]:
    body = check_fields(raw, QUOTE_FIELDS)
    base = _base_symbol(body.get("symbol"))
    side = body.get("side")
    if side not in ("buy", "sell"):
        raise ValidationFailed("side must be buy or sell", code="invalid_side", field="side")
    budget = body.get("latency_budget_ms", DEFAULT_LATENCY_BUDGET_MS)
    if isinstance(budget, bool) or not isinstance(budget, int) or not 0 <= budget <= 3_600_000:
        raise ValidationFailed("latency_budget_ms must be 0 to 3600000",
                               code="invalid_latency_budget", field="latency_budget_ms")
    qty = _amount(body, "qty", positive=True, limit=MAX_QTY)
    price = _amount(body, "price", positive=True, limit=MAX_PRICE)
    usd = _amount(body, "usd_balance")
    usdc = _amount(body, "usdc_balance", default="0")
    venues = _venues(body, follower)
    async with uow:
        models = await fee_models(uow)
        buffer, source = await effective_buffer(uow, follower)
    if not pair_known(base, list(models.values())):
        raise ValidationFailed(f"no venue trades {base} against {FIAT} or {STABLECOIN}",
                               code="unknown_pair", field="symbol")
    decision: RouteDecision = choose_route(
        RouteRequest(base, str(side), qty, price, usd, usdc, buffer, budget, venues), models)
    return {"follower_id": follower.follower_id, "symbol": base, "side": side,
            "buffer": buffer_json("follower", follower.follower_id, buffer, source),
            **decision.to_json()}
