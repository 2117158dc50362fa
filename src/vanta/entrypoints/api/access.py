"""Attribute-based narrowing on top of tenant scoping: a token limited to some vaults, or a
follower's token (its one follower and that follower's vault), sees nothing else. What it may
not see answers 404, exactly like another tenant's object or an unknown id: same status, same
code, same body, and nothing in it but the id the caller sent."""

from __future__ import annotations

from collections.abc import Iterable

from vanta.application.ports.reconciliation import NOT_MANAGER_SOURCES
from vanta.application.ports.records_catalog import FollowerRecord
from vanta.application.ports.records_orders import ChildOrderRecord, ManagerOrderRecord
from vanta.application.principal import Principal
from vanta.bootstrap import Container
from vanta.entrypoints.api.problems import ApiProblem


async def visible_vaults(container: Container, p: Principal) -> frozenset[str] | None:
    """None: every vault of the tenant."""
    vaults = p.vault_ids
    if p.follower_id is not None:
        async with container.uow(readonly=True) as uow:
            row = await uow.followers.get(p.tenant_id, p.follower_id)
        own = frozenset({row.vault_id}) if row else frozenset()
        vaults = own if vaults is None else vaults & own
    return vaults


def vault_not_found(vault_id: str) -> ApiProblem:
    # the same words as the application layer's NotFound for a missing vault
    return ApiProblem(404, "vault_not_found", f"vault {vault_id} not found")


def order_not_found(mo_id: str) -> ApiProblem:
    return ApiProblem(404, "manager_order_not_found", f"manager order {mo_id} not found")


async def require_vault(container: Container, p: Principal, vault_id: str) -> None:
    vaults = await visible_vaults(container, p)
    if vaults is not None and vault_id not in vaults:
        raise vault_not_found(vault_id)


def require_follower(p: Principal, row: FollowerRecord | None, follower_id: str) -> None:
    if row is None or not p.may_see_follower(follower_id) or \
            not p.may_see_vault(row.vault_id):
        raise ApiProblem(404, "follower_not_found", f"follower {follower_id} not found")


async def load_follower(container: Container, p: Principal, follower_id: str
                        ) -> FollowerRecord:
    async with container.uow(readonly=True) as uow:
        row = await uow.followers.get(p.tenant_id, follower_id)
    require_follower(p, row, follower_id)
    assert row is not None
    return row


def visible_children(p: Principal, vaults: frozenset[str] | None,
                     rows: Iterable[ChildOrderRecord]) -> list[ChildOrderRecord]:
    return [r for r in rows if (vaults is None or r.vault_id in vaults)
            and p.may_see_follower(r.follower_id)]


def visible_order(p: Principal, vaults: frozenset[str] | None,
                  row: ManagerOrderRecord | None) -> bool:
    """A manager order ``p`` may see: one of its vaults and, for a follower's token, not a
    sync or reconciliation fix-up order made for another follower (its id and metadata name
    that follower)."""
    if row is None or (vaults is not None and row.vault_id not in vaults):
        return False
    if p.follower_id is None or row.source not in NOT_MANAGER_SOURCES:
        return True
    return p.may_see_follower(str((row.meta or {}).get("sync_for")))
