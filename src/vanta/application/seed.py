"""A demo tenant, vault and followers for the embedded profile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from vanta.application.clock import utcnow
from vanta.application.followers import _audit_view, parse_registration, register_follower
from vanta.application.ports.secrets import SecretStore
from vanta.application.ports.uow import UnitOfWork, UowFactory
from vanta.application.tenancy import grant_plan
from vanta.domain.ids import new_id
from vanta.domain.webhook_signing import new_webhook_secret, standard_secret_string

DEMO_TENANT_ID = "tnt_demo"
DEMO_VAULT_ID = "V_CORE"


@dataclass
class SeededFollower:
    follower_id: str
    label: str
    secret: str
    settings: dict[str, Any]


async def create_tenant(uow: UnitOfWork, *, tenant_id: str, name: str) -> None:
    async with uow:
        if await uow.tenants.get(tenant_id) is None:
            await uow.tenants.add({"tenant_id": tenant_id, "name": name, "status": "active",
                                   "created_at": utcnow()})
            await uow.audit.append(entity="tenant", entity_id=tenant_id, action="created",
                                   actor="seed", tenant_id=tenant_id, payload={"name": name})
            await uow.commit()


async def create_vault(uow: UnitOfWork, *, tenant_id: str, vault_id: str | None = None,
                       label: str, personas: list[str] | None = None) -> str:
    vid = vault_id or new_id()
    async with uow:
        if await uow.vaults.get(tenant_id, vid) is None:
            await uow.vaults.add({
                "vault_id": vid, "tenant_id": tenant_id, "label": label,
                "rails": {"fiat": True, "crypto": True}, "personas": personas or ["Athena"],
                "risk_profile": {"max_drawdown_pct": 12, "style": "balanced"},
                "public": False, "maintenance": False, "created_at": utcnow()})
            await uow.audit.append(entity="vault", entity_id=vid, action="created",
                                   actor="seed", tenant_id=tenant_id, payload={"label": label})
            await uow.commit()
    return vid


DEMO_FOLLOWERS: list[dict[str, Any]] = [
    {"label": "Ada (scale 0.20, cap $2,500)", "scale": "0.20", "max_pos_usd": 2500,
     "mode": "capped", "plan": "pro"},
    {"label": "Bo (scale 0.50)", "scale": "0.50"},
    {"label": "Cy (scale 1.00, cap $5,000)", "scale": "1", "max_pos_usd": 5000, "plan": "pro"},
    {"label": "Dee (kill switch on)", "scale": "0.75", "kill_switch": True},
]


async def seed_demo(uow_factory: UowFactory, secrets: SecretStore, *,
                    webhook_base: str,
                    on_progress: Callable[[int, int], None] | None = None
                    ) -> list[SeededFollower]:
    """Idempotent for the tenant and vault; adds the demo followers only to an empty vault."""
    await create_tenant(uow_factory(), tenant_id=DEMO_TENANT_ID, name="Demo Capital")
    async with uow_factory() as uow:
        has_plan = await uow.subscriptions.current(DEMO_TENANT_ID) is not None
    if not has_plan:
        await grant_plan(uow_factory(), tenant_id=DEMO_TENANT_ID, plan_id="institutional",
                         actor="seed")
    await create_vault(uow_factory(), tenant_id=DEMO_TENANT_ID, vault_id=DEMO_VAULT_ID,
                       label="Core Growth", personas=["Athena", "Apollo"])
    async with uow_factory() as uow:
        existing = await uow.followers.list_for_vault(DEMO_TENANT_ID, DEMO_VAULT_ID)
    if existing:
        return []
    out = []
    for i, spec in enumerate(DEMO_FOLLOWERS):
        if on_progress is not None:
            on_progress(i, len(DEMO_FOLLOWERS))
        fid_hint = spec["label"].split()[0].lower()
        row, secret = await register_follower(
            uow_factory(), secrets, tenant_id=DEMO_TENANT_ID, vault_id=DEMO_VAULT_ID,
            raw={**spec, "webhook": {"url": f"{webhook_base}/hooks/{fid_hint}"}}, actor="seed")
        out.append(SeededFollower(row.follower_id, spec["label"], secret, spec))
    return out


async def register_webhook_followers(uow_factory: UowFactory, secrets: SecretStore, *,
                                     tenant_id: str, vault_id: str, keys: Sequence[str],
                                     hooks: str, actor: str) -> dict[str, str]:
    """Many webhook followers of one vault (scale 1, each at ``{hooks}/{key}``) in one
    transaction, for load tests and benchmarks: registering thousands through the API takes
    longer than what they set up. Returns each key's signing secret (``whsec_`` form)."""
    raw = [new_webhook_secret() for _ in keys]
    fids = [new_id() for _ in keys]
    with ThreadPoolExecutor(16) as pool:  # the local store fsyncs every secret's file
        refs = list(pool.map(lambda a: secrets.put(f"webhook/{a[0]}/v1", a[1]),
                             zip(fids, raw, strict=True)))
    now = utcnow()
    rows, events = [], []
    for key, fid, ref in zip(keys, fids, refs, strict=True):
        fields = parse_registration({"label": key, "scale": "1",
                                     "webhook": {"url": f"{hooks}/{key}"}})
        fields.pop("sync")
        fields.pop("bridge")
        row = {"follower_id": fid, "tenant_id": tenant_id, "vault_id": vault_id, **fields,
               "hmac_key_ref": ref, "bridged_brokers": None, "paused_reason": None,
               "created_at": now, "updated_at": now}
        rows.append(row)
        events.append({"entity": "follower", "entity_id": fid, "action": "registered",
                       "actor": actor, "tenant_id": tenant_id,
                       "payload": {"vault_id": vault_id, "after": _audit_view(row)}})
    async with uow_factory() as uow:
        for row in rows:
            await uow.followers.add(row)
        await uow.audit.append_many(events)
        await uow.commit()
    return {k: standard_secret_string(s) for k, s in zip(keys, raw, strict=True)}
