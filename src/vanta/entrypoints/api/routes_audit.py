"""Routes for auditors: an order's DAG, its signed replay bundle, and the public key that
verifies bundles and audit anchors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from vanta.application.dag import order_dag
from vanta.application.principal import Principal
from vanta.application.public_keys import keys_document
from vanta.entrypoints.api.access import order_not_found, visible_order, visible_vaults
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep

router = APIRouter()


@router.get("/v1/manager-orders/{mo_id}/dag", tags=["audit"])
async def get_dag(mo_id: str, container: ContainerDep,
                  p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
    """The order, its children (and broker legs), attempts, fills and audit events as a DAG
    under a stable ``dag_id`` (the one webhook bodies carry in ``audit.dag_id``)."""
    async with container.uow(readonly=True) as uow:
        mo = await uow.manager_orders.get(p.tenant_id, mo_id)
    # hidden answers exactly like unknown
    if not visible_order(p, await visible_vaults(container, p), mo):
        raise order_not_found(mo_id)
    dag = await order_dag(container.uow(readonly=True), p.tenant_id, mo_id,
                          follower_visible=p.may_see_follower)
    return dag.to_json()


@router.get("/.well-known/vanta-replay-keys.json", tags=["audit"])
async def replay_keys(container: ContainerDep) -> dict[str, Any]:
    """The Ed25519 public key that signs replay bundles and audit anchors (RFC 8037 OKP)."""
    assert container.signer is not None
    return keys_document(container.signer)
