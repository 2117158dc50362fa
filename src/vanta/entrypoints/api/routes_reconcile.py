"""Routes of reconciliation: run it on a vault (dry run by default), read a run's report,
set drift thresholds, and take a webhook follower's position report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from vanta.application.principal import Principal
from vanta.application.reconcile import get_reconciliation, reconcile_vault
from vanta.application.reconcile_inputs import (
    report_positions,
    set_follower_threshold,
    set_vault_threshold,
)
from vanta.application.reconcile_report import summarize
from vanta.entrypoints.api.access import load_follower, require_vault, visible_vaults
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.reconcile import (
    FollowerThresholdIn,
    PositionsIn,
    ReconcileIn,
    ThresholdIn,
)
from vanta.entrypoints.api.problems import ApiProblem

router = APIRouter()


@router.post("/v1/vaults/{vault_id}/reconcile", status_code=201, tags=["reconciliation"],
             openapi_extra=openapi_body(ReconcileIn, required=False))
async def run_reconciliation(vault_id: str, container: ContainerDep,
                             p: Annotated[Principal, Depends(require("mirror:manage"))],
                             req: Annotated[ReconcileIn, body(ReconcileIn, required=False)]
                             ) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    report = await reconcile_vault(
        container.uow, container.dispatcher.brokers, tenant_id=p.tenant_id,
        vault_id=vault_id, dry_run=req.dry_run, actor=p.subject,
        settings=container.reconcile_settings(), metrics=container.reconcile_metrics)
    if report["fixups"] and not req.dry_run:
        container.outbox_written.set()  # the fix-ups may go now
    return report


def _narrow(p: Principal, report: dict[str, Any]) -> dict[str, Any]:
    """A follower's token sees its own lines of the run only, and figures over those lines
    alone (how many others drifted is the others' business)."""
    if p.follower_id is None:
        return report
    out = dict(report)
    for key in ("followers", "drifts", "fixups", "blocked", "findings"):
        out[key] = [r for r in report.get(key, []) if p.may_see_follower(r["follower_id"])]
    return {**out, **summarize(out["drifts"], out["fixups"], out["blocked"], out["findings"])}


@router.get("/v1/reconciliations/{run_id}", tags=["reconciliation"])
async def get_run(run_id: str, container: ContainerDep,
                  p: Annotated[Principal, Depends(require("orders:read"))]) -> dict[str, Any]:
    report = await get_reconciliation(container.uow(readonly=True), tenant_id=p.tenant_id,
                                      run_id=run_id)
    vaults = await visible_vaults(container, p)
    if vaults is not None and report["vault_id"] not in vaults:
        # in the application's words for an unknown run: the same answer
        raise ApiProblem(404, "reconciliation_not_found", f"reconciliation {run_id} not found")
    return _narrow(p, report)


@router.put("/v1/vaults/{vault_id}/reconcile-threshold", tags=["reconciliation"],
            openapi_extra=openapi_body(ThresholdIn))
async def put_vault_threshold(vault_id: str, container: ContainerDep,
                              p: Annotated[Principal, Depends(require("mirror:manage"))],
                              req: Annotated[ThresholdIn, body(ThresholdIn)]) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    return await set_vault_threshold(container.uow(), tenant_id=p.tenant_id, vault_id=vault_id,
                                     raw=req.to_raw(), actor=p.subject)


@router.put("/v1/followers/{follower_id}/reconcile-threshold", tags=["reconciliation"],
            openapi_extra=openapi_body(FollowerThresholdIn))
async def put_follower_threshold(
        follower_id: str, container: ContainerDep,
        p: Annotated[Principal, Depends(require("follower:manage"))],
        req: Annotated[FollowerThresholdIn, body(FollowerThresholdIn)]) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await set_follower_threshold(container.uow(), tenant_id=p.tenant_id,
                                        follower_id=follower_id, raw=req.to_raw(),
                                        actor=p.subject)


@router.post("/v1/followers/{follower_id}/positions", status_code=201, tags=["followers"],
             openapi_extra=openapi_body(PositionsIn))
async def post_positions(follower_id: str, container: ContainerDep,
                         p: Annotated[Principal, Depends(require("follower:manage"))],
                         req: Annotated[PositionsIn, body(PositionsIn)]) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await report_positions(container.uow(), tenant_id=p.tenant_id,
                                  follower_id=follower_id, raw=req.to_raw(), actor=p.subject)
