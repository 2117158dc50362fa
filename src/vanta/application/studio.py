"""Replay Studio runs: validate the request, stream the vault's recorded orders through the
simulation, seal the answer, store the run and audit it. Nothing is stored when the request
is refused."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from vanta.application.clock import Clock, utcnow
from vanta.application.followers import SETTING_FIELDS, check_fields, parse_settings
from vanta.application.plans import follower_rights
from vanta.application.ports.studio import (
    OrderKey,
    RecordedOrderRow,
    StudioRunRecord,
    StudioUnitOfWork,
)
from vanta.application.ports.uow import UnitOfWork
from vanta.application.tenancy import require_feature, tenant_entitlements
from vanta.domain.entitlements import Feature
from vanta.domain.errors import NotFound, ValidationFailed
from vanta.domain.followers import (
    DeliveryKind,
    FollowerMode,
    FollowerSpec,
    Protections,
    ScaleMode,
)
from vanta.domain.ids import ManagerOrderId, VaultId, new_id
from vanta.domain.mirroring import UNVERSIONED
from vanta.domain.money import Instrument, default_instrument, to_decimal
from vanta.domain.orders import ManagerOrder, Side, TimeInForce
from vanta.domain.overlays import OverlayEffect
from vanta.domain.studio import (
    ENGINE_VERSION,
    MAX_CONFIGS,
    SIM_FOLLOWER,
    RecordedOrder,
    StudioConfig,
)
from vanta.domain.studio_fees import FeeTerms
from vanta.domain.studio_report import StudioRun
from vanta.domain.studio_windows import DEFAULT_LAST, StudioLimits, limits_for

CHUNK = 1_000  # orders read per query: one chunk is in memory at a time
Progress = Callable[[int, int], None]  # (orders done, orders in the window)
CONFIG_FIELDS = SETTING_FIELDS | {"fees"}
FEE_FIELDS = frozenset({"rate", "high_water_mark", "period"})


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None
    last: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"from": None if self.start is None else self.start.isoformat(),
                "to": None if self.end is None else self.end.isoformat(), "last": self.last}


@dataclass(frozen=True, slots=True)
class StudioRequest:
    vault_id: str
    window: Window
    starting_nav: Decimal
    configs: tuple[StudioConfig, ...]
    follower_id: str | None = None  # a real follower of the vault to compare with

    def to_json(self) -> dict[str, Any]:
        """The normalized request: part of the answer and of its hash."""
        return {"vault_id": self.vault_id, "window": self.window.to_json(),
                "starting_nav": str(self.starting_nav), "follower_id": self.follower_id,
                "configs": [{"label": c.label, "settings": _settings_json(c.spec),
                             "fees": c.fees.to_json()} for c in self.configs]}


def _settings_json(spec: FollowerSpec) -> dict[str, Any]:
    d = spec.to_json()
    d.pop("follower_id")
    d.pop("delivery")
    return d


def parse_config(raw: Mapping[str, Any], index: int) -> StudioConfig:
    """One configuration, refused exactly as the follower API refuses its settings."""
    check_fields(raw, CONFIG_FIELDS)
    fees_raw = check_fields(raw.get("fees") or {}, FEE_FIELDS)
    settings = parse_settings({k: v for k, v in raw.items() if k != "fees"}, None)
    rate = fees_raw.get("rate", "0")
    hwm = fees_raw.get("high_water_mark")
    fees = FeeTerms(rate=to_decimal(rate, field="fees.rate", code="invalid_fee_rate"),
                    hwm=None if hwm is None else to_decimal(
                        hwm, field="fees.high_water_mark", code="invalid_amount"),
                    period=str(fees_raw.get("period", "month")))
    flip, persona = follower_rights(settings["plan_id"], settings["overlay_opt_in"])
    spec = FollowerSpec(
        follower_id=SIM_FOLLOWER, mode=FollowerMode(settings["mode"]),
        scale=settings["scale"], max_pos_usd=settings["max_pos_usd"],
        kill_switch=settings["kill_switch"], delivery=DeliveryKind.WEBHOOK,
        scale_mode=ScaleMode(settings["scale_mode"]),
        nav_multiplier=settings["nav_multiplier"], fractional=settings["fractional"],
        paused=settings["paused"], protections=Protections.from_json(settings["protections"]),
        flip_allowed=flip, persona_allowed=persona)
    return StudioConfig(settings["label"] or f"config {index + 1}", spec, fees)


def config_from_text(text: str) -> dict[str, Any]:
    """One configuration as people type it (``vanta studio --compare``, the web page):
    ``0.5`` (a scale), ``key=value,key=value`` (settings; dotted keys for nested ones:
    ``protections.max_order_usd=500``, ``fees.rate=0.2``) or a JSON object: the API's
    configuration body."""
    text = text.strip()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValidationFailed(f"not JSON ({e.msg})", code="invalid_config",
                                   field="compare") from None
        if not isinstance(raw, dict):
            raise ValidationFailed("give a JSON object", code="invalid_config",
                                   field="compare")
        return raw
    try:
        Decimal(text)
        return {"label": f"scale {text}", "scale": text}
    except InvalidOperation:
        pass
    out: dict[str, Any] = {}
    for part in filter(None, text.split(",")):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValidationFailed(f"{part!r} is not key=value",
                                   code="invalid_config", field="compare")
        key, value = key.strip(), value.strip()
        if key == "fee_rate":
            key = "fees.rate"
        head, dot, leaf = key.partition(".")
        into = out.setdefault(head, {}) if dot else out
        if not isinstance(into, dict):
            raise ValidationFailed(f"{head} is both a value and a group", code="invalid_config",
                                   field="compare")
        into[leaf if dot else key] = {"true": True, "false": False}.get(value.lower(), value)
    out.setdefault("label", text)
    return out


def parse_request(*, vault_id: str, window: Window, starting_nav: Decimal,
                  configs: Sequence[Mapping[str, Any]],
                  follower_id: str | None = None) -> StudioRequest:
    if not configs or len(configs) > MAX_CONFIGS:
        raise ValidationFailed(f"give 1 to {MAX_CONFIGS} configurations",
                               code="too_many_configs", field="configs")
    if starting_nav <= 0:
        raise ValidationFailed("the starting NAV must be above 0", code="invalid_nav",
                               field="starting_nav")
    if window.last is not None and (window.start is not None or window.end is not None):
        raise ValidationFailed("give either from/to or last, not both",
                               code="invalid_window", field="window")
    if window.start is not None and window.end is not None and window.end < window.start:
        raise ValidationFailed("the window ends before it starts", code="invalid_window",
                               field="window")
    if window.last is not None and window.last < 1:
        raise ValidationFailed("last must be at least 1", code="invalid_window", field="last")
    if window == Window():
        window = Window(last=DEFAULT_LAST)
    return StudioRequest(vault_id, window, starting_nav,
                         tuple(parse_config(c, i) for i, c in enumerate(configs)),
                         follower_id)


async def studio_limits(uow: UnitOfWork, tenant_id: str) -> StudioLimits:
    """Pro and up (the replay feature); the plan sets how large a window may be."""
    async with uow:
        await require_feature(uow, tenant_id, Feature.REPLAY_DASHBOARDS)
        return limits_for((await tenant_entitlements(uow, tenant_id)).plan_id)


def recorded_order(row: RecordedOrderRow) -> RecordedOrder:
    snap = row.snapshot
    inst = snap.get("instrument")
    price = snap.get("price")
    mnav = snap.get("manager_nav")
    order = ManagerOrder(
        mo_id=ManagerOrderId(row.mo_id), vault_id=VaultId(row.vault_id),
        client_order_id=row.client_order_id, symbol=row.symbol, venue=row.venue,
        side=Side(row.side), qty=row.qty, tif=TimeInForce(row.tif), ref_price=row.ref_price,
        closes_position=row.closes_position)
    return RecordedOrder(
        at=row.created_at, order=order,
        instrument=Instrument.from_json(dict(inst)) if isinstance(inst, Mapping)
        else default_instrument(row.symbol, row.venue),
        price=Decimal(str(price)) if price is not None else row.ref_price,
        manager_nav=None if mnav is None else Decimal(str(mnav)),
        manager_position=Decimal(str(snap.get("manager_position", "0"))),
        overlay=OverlayEffect.from_json(snap.get("overlay")),
        sizing_version=int(snap.get("sizing_version", UNVERSIONED)))


async def _resolve(uow: StudioUnitOfWork, tenant_id: str, req: StudioRequest,
                   limits: StudioLimits, now: datetime
                   ) -> tuple[int, OrderKey | None, OrderKey | None]:
    w = req.window
    if w.last is not None:
        limits.check_last(w.last)
        return await uow.studio.last_orders(tenant_id, req.vault_id, w.last)
    size, first, last = await uow.studio.window(tenant_id, req.vault_id, w.start, w.end)
    # without from, the window starts at the vault's first order up to ``to``
    start = w.start if w.start is not None else first[0] if first is not None else None
    if start is not None:
        limits.check_span(start, w.end, now)
    limits.check_size(size)
    return size, first, last


@dataclass(frozen=True)
class StudioResult:
    run_id: str
    sha256: str
    canonical: bytes  # the sealed answer, as stored and sent (without the run id)

    @property
    def document(self) -> dict[str, Any]:
        """The answer as data, with its run id (decoded on each use: it may be large)."""
        return {"run_id": self.run_id, **json.loads(self.canonical)}


async def run_studio(uow: StudioUnitOfWork, *, tenant_id: str, req: StudioRequest,
                     limits: StudioLimits, actor: str, clock: Clock = utcnow,
                     may_see_follower: Callable[[str], bool] = lambda _: True,
                     progress: Progress | None = None, chunk: int = CHUNK) -> StudioResult:
    async with uow:
        if await uow.vaults.get(tenant_id, req.vault_id) is None:
            raise NotFound(f"vault {req.vault_id} not found", code="vault_not_found")
        if req.follower_id is not None:
            f = await uow.followers.get(tenant_id, req.follower_id)
            if f is None or f.vault_id != req.vault_id or not may_see_follower(f.follower_id):
                raise NotFound(f"follower {req.follower_id} not found",
                               code="follower_not_found")
        size, first, last = await _resolve(uow, tenant_id, req, limits, clock())
        run = StudioRun(req.configs, req.starting_nav, compare=req.follower_id is not None)
        done = 0
        if first is not None and last is not None:
            async for rows in uow.studio.orders(tenant_id, req.vault_id, first, last, chunk):
                actual = await uow.studio.children(tenant_id, req.follower_id,
                                                   [r.mo_id for r in rows]) \
                    if req.follower_id is not None else {}
                for r in rows:
                    run.add(recorded_order(r), actual.get(r.mo_id))
                done += len(rows)
                if progress is not None:
                    progress(done, size)
    digest, data = run.seal(req.to_json())
    run_id = new_id()
    async with uow:
        await uow.studio.add_run({
            "run_id": run_id, "tenant_id": tenant_id, "vault_id": req.vault_id,
            "follower_id": req.follower_id, "actor": actor, "created_at": clock(),
            "request": req.to_json(), "engine_version": ENGINE_VERSION,
            "output_sha256": digest, "output": data.decode()})
        await uow.audit.append(
            entity="studio_run", entity_id=run_id, action="run", actor=actor,
            tenant_id=tenant_id,
            payload={"vault_id": req.vault_id, "follower_id": req.follower_id,
                     "window": req.window.to_json(), "orders": run.orders,
                     "configs": len(req.configs), "engine_version": ENGINE_VERSION,
                     "sha256": digest})
        await uow.commit()
    return StudioResult(run_id, digest, data)


async def get_run(uow: StudioUnitOfWork, *, tenant_id: str, run_id: str) -> StudioRunRecord:
    async with uow:
        rec = await uow.studio.get_run(tenant_id, run_id)
    if rec is None:
        raise NotFound(f"studio run {run_id} not found", code="studio_run_not_found")
    return rec
