"""Replay Studio: run a follower-level what-if over a vault's recorded orders, fetch a run."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from vanta.application.principal import Principal
from vanta.application.studio import Window, get_run, parse_request, run_studio, studio_limits
from vanta.domain.errors import NotFound
from vanta.entrypoints.api.access import require_vault
from vanta.entrypoints.api.auth import current_principal
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.responses import answer
from vanta.entrypoints.api.models.studio import StudioRunIn, StudioRunOut
from vanta.entrypoints.api.problems import ApiProblem

router = APIRouter()
SCOPES = ("audit:read", "vault:read")  # either one, on the run's vault


def studio_reader(p: Annotated[Principal, Depends(current_principal)]) -> Principal:
    if not any(p.has_scope(s) for s in SCOPES):
        raise ApiProblem(403, "insufficient_scope",
                         "this call needs the 'audit:read' or 'vault:read' scope",
                         required_scope="vault:read")
    return p


def _run_not_found(run_id: str) -> ApiProblem:
    return ApiProblem(404, "studio_run_not_found", f"studio run {run_id} not found")


@router.post("/v1/replay-studio/runs", status_code=201, tags=["audit"],
             openapi_extra=openapi_body(StudioRunIn),
             responses=answer(StudioRunOut, 201, "the run, stored; its sha256 covers "
                              "everything but run_id"))
async def create_run(container: ContainerDep,
                     p: Annotated[Principal, Depends(studio_reader)],
                     new: Annotated[StudioRunIn, body(StudioRunIn)]) -> Response:
    limits = await studio_limits(container.uow(readonly=True), p.tenant_id)
    await require_vault(container, p, new.vault_id)
    if new.follower_id is not None and not p.may_see_follower(new.follower_id):
        raise ApiProblem(404, "follower_not_found", f"follower {new.follower_id} not found")
    req = parse_request(
        vault_id=new.vault_id, window=Window(new.from_, new.to, new.last),
        starting_nav=new.starting_nav, follower_id=new.follower_id,
        configs=[c.to_raw() for c in new.configs])
    result = await run_studio(container.uow(), tenant_id=p.tenant_id, req=req, limits=limits,
                              actor=p.subject, may_see_follower=p.may_see_follower)
    # the sealed bytes as computed, with the run id put in front (outside the hash)
    data = b'{"run_id":' + json.dumps(result.run_id).encode() + b"," + result.canonical[1:]
    return Response(data, status_code=201, media_type="application/json",
                    headers={"Location": f"/v1/replay-studio/runs/{result.run_id}"})


@router.get("/v1/replay-studio/runs/{run_id}", tags=["audit"], response_model=None,
            responses=answer(StudioRunOut))
async def fetch_run(run_id: str, container: ContainerDep,
                    p: Annotated[Principal, Depends(studio_reader)]) -> Response:
    await studio_limits(container.uow(readonly=True), p.tenant_id)
    try:
        rec = await get_run(container.uow(readonly=True), tenant_id=p.tenant_id, run_id=run_id)
    except NotFound:
        raise _run_not_found(run_id) from None
    try:
        await require_vault(container, p, rec.vault_id)
    except ApiProblem:
        raise _run_not_found(run_id) from None
    if rec.follower_id is not None and not p.may_see_follower(rec.follower_id):
        raise _run_not_found(run_id)
    head: dict[str, Any] = {"run_id": rec.run_id, "actor": rec.actor,
                            "created_at": rec.created_at.isoformat()}
    data = json.dumps(head, separators=(",", ":")).encode()[:-1] + b"," + \
        rec.output.encode()[1:]
    return Response(data, media_type="application/json")
