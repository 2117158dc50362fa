"""Attribute-based narrowing on top of tenant scoping: a token limited to some vaults, or a
follower's token (its one follower and that follower's vault), sees nothing else. What it may
not see answers 404, exactly like another tenant's object."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vanta.application.principal import Principal
from vanta.bootstrap import Container
from vanta.entrypoints.api.problems import ApiProblem


async def visible_vaults(container: Container, p: Principal) -> frozenset[str] | None:
    """None: every vault of the tenant."""
    vaults = p.vault_ids
    if p.follower_id is not None:
        async with container.uow(readonly=True) as uow:
            row = await uow.followers.get(p.tenant_id, p.follower_id)
        own = frozenset({row["vault_id"]}) if row else frozenset()
        vaults = own if vaults is None else vaults & own
    return vaults


async def require_vault(container: Container, p: Principal, vault_id: str) -> None:
    vaults = await visible_vaults(container, p)
    if vaults is not None and vault_id not in vaults:
        raise ApiProblem(404, "vault_not_found", f"vault {vault_id} not found")


def require_follower(p: Principal, row: Mapping[str, Any] | None, follower_id: str) -> None:
    if row is None or not p.may_see_follower(follower_id) or \
            not p.may_see_vault(row["vault_id"]):
        raise ApiProblem(404, "follower_not_found", f"follower {follower_id} not found")


async def load_follower(container: Container, p: Principal, follower_id: str
                        ) -> Mapping[str, Any]:
    async with container.uow(readonly=True) as uow:
        row = await uow.followers.get(p.tenant_id, follower_id)
    require_follower(p, row, follower_id)
    assert row is not None
    return row


def visible_children(p: Principal, vaults: frozenset[str] | None,
                     rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [r for r in rows if (vaults is None or r["vault_id"] in vaults)
            and p.may_see_follower(r["follower_id"])]
