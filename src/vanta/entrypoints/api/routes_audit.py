"""Routes for auditors: an order's DAG, its signed replay bundle, a child's audit records with
their inclusion proofs, and the public key that verifies bundles and audit anchors."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from vanta.application.audit_proofs import proofs_for
from vanta.application.dag import order_dag
from vanta.application.ports.objectstore import ObjectStoreError
from vanta.application.principal import Principal
from vanta.application.public_keys import keys_document
from vanta.application.replay_bundle import TAR, build_bundle, store_bundle
from vanta.application.tenancy import require_feature
from vanta.domain.entitlements import Feature
from vanta.entrypoints.api.access import (
    order_not_found,
    visible_children,
    visible_order,
    visible_vaults,
)
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep, Cursor, Limit
from vanta.entrypoints.api.pagination import MAX_LIMIT, decode, encode
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.code_version import code_version

router = APIRouter()


@router.get("/v1/manager-orders/{mo_id}/dag", tags=["audit"])
async def get_dag(mo_id: str, container: ContainerDep,
                  p: Principal = Depends(require("orders:read")),
                  limit: Limit = MAX_LIMIT, cursor: Cursor = None) -> dict[str, Any]:
    """The order, its children (and broker legs), attempts, fills and audit events as a DAG
    under a stable ``dag_id`` (the one webhook bodies carry in ``audit.dag_id``). At most
    ``limit`` children per page, in (created_at, fo_id) order, each with everything hanging
    off it; ``next_cursor`` continues while more follow. Every page repeats the order's node
    and its audit events, so merging pages by node id gives the whole DAG."""
    after = decode(cursor)
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True) as uow:
        # without its snapshot (every follower's inputs), which the DAG never shows
        mo = (await uow.manager_orders.get_many_unscoped([mo_id])).get(mo_id)
    # another tenant's or hidden answers exactly like unknown
    if mo is None or mo.tenant_id != p.tenant_id or not visible_order(p, vaults, mo):
        raise order_not_found(mo_id)
    got = await order_dag(container.uow(readonly=True), p.tenant_id, mo_id, limit=limit,
                          after=after, follower_id=p.follower_id, vault_ids=vaults)
    return {**got.dag.to_json(), "children": got.children,
            "next_cursor": None if got.next_after is None else encode(*got.next_after)}


@router.get("/v1/follower-orders/{fo_id}/audit-proofs", tags=["audit"])
async def get_audit_proofs(fo_id: str, container: ContainerDep,
                           p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
    """The child's delivery records, each settled in a batch audit event: the record's exact
    text, its RFC 9162 inclusion proof (``audit_path``, bottom-up) and the chained event
    whose payload carries the batch's Merkle root. Hash the record as
    ``SHA-256(0x00 || record)``, fold the path, compare with ``root``, then check the
    event's hash against the chain (``vanta audit-verify``) or a signed anchor."""
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True) as uow:
        child = await uow.child_orders.get(p.tenant_id, fo_id)
        if child is None or not visible_children(p, vaults, [child]):
            raise ApiProblem(404, "follower_order_not_found", f"order {fo_id} not found")
        proofs = await proofs_for(uow, p.tenant_id, [fo_id])
    return {"data": proofs}


@router.get("/.well-known/vanta-replay-keys.json", tags=["audit"])
async def replay_keys(container: ContainerDep) -> dict[str, Any]:
    """The Ed25519 public key that signs replay bundles and audit anchors (RFC 8037 OKP)."""
    assert container.signer is not None
    return keys_document(container.signer)


@router.get("/v1/manager-orders/{mo_id}/replay-bundle", tags=["audit"],
            response_class=Response,
            responses={200: {"content": {TAR: {}},
                             "description": "the signed bundle (a tar archive)"}})
async def get_replay_bundle(mo_id: str, container: ContainerDep,
                            p: Principal = Depends(require("audit:read"))) -> Response:
    """The order's signed replay bundle, also written to the object store under the
    immutable key given in ``X-Vanta-Bundle-Key``. It holds every follower's inputs, so a
    token narrowed to one follower is refused."""
    async with container.uow(readonly=True) as uow:
        await require_feature(uow, p.tenant_id, Feature.REPLAY_DASHBOARDS)
        mo = await uow.manager_orders.get(p.tenant_id, mo_id)
    if not visible_order(p, await visible_vaults(container, p), mo):
        raise order_not_found(mo_id)
    if p.follower_id is not None:
        raise ApiProblem(403, "replay_bundle_whole_book", "a replay bundle holds every "
                         "follower's inputs; a token narrowed to one follower cannot have it")
    assert container.signer is not None
    bundle = await build_bundle(container.uow(readonly=True), p.tenant_id, mo_id,
                                signer=container.signer, code_version=code_version())
    try:
        ref = await store_bundle(container.object_store(), bundle)
    except ObjectStoreError as e:
        raise ApiProblem(503, "object_store_unavailable", f"the bundle could not be stored: "
                         f"{type(e).__name__}") from None
    return Response(bundle.data, media_type=TAR, headers={
        "X-Vanta-Bundle-Key": ref.key, "X-Vanta-Bundle-Sha256": ref.sha256,
        "Content-Disposition": f'attachment; filename="replay-{mo_id}.tar"'})
