"""Routes for the lifecycle of vaults and followers: creating and changing a vault,
unfollowing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse

from vanta.application.principal import Principal
from vanta.application.unfollow import PositionChoice, unfollow
from vanta.application.vaults import add_vault, patch_vault
from vanta.entrypoints.api.access import load_follower, require_vault
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.responses import FollowerOut, VaultDetail, answer
from vanta.entrypoints.api.models.vaults import VaultIn, VaultPatch
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.api.render import child_json_from, follower_json, vault_json

router = APIRouter()


@router.post("/v1/vaults", status_code=201, tags=["vaults"],
             openapi_extra=openapi_body(VaultIn), response_model=None,
             responses=answer(VaultDetail, 201, "created"))
async def create_vault(container: ContainerDep,
                       p: Annotated[Principal, Depends(require("vault:manage"))],
                       new: Annotated[VaultIn, body(VaultIn)]) -> JSONResponse:
    if p.vault_ids is not None or p.follower_id is not None:
        # a token narrowed to some vaults (or to a follower) could not see the new one
        raise ApiProblem(403, "insufficient_scope", "a token narrowed to vaults or to a "
                         "follower cannot create vaults", required_scope="vault:manage")
    row = await add_vault(container.uow(), tenant_id=p.tenant_id, raw=new.to_raw(),
                          actor=p.subject)
    return JSONResponse({**vault_json(row), "follower_count": 0}, status_code=201)


@router.patch("/v1/vaults/{vault_id}", tags=["vaults"], openapi_extra=openapi_body(VaultPatch),
              response_model=None, responses=answer(VaultDetail))
async def update_vault(vault_id: str, container: ContainerDep,
                       p: Annotated[Principal, Depends(require("vault:manage"))],
                       change: Annotated[VaultPatch, body(VaultPatch)]) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    row = await patch_vault(container.uow(), tenant_id=p.tenant_id, vault_id=vault_id,
                            raw=change.to_raw(), actor=p.subject)
    return vault_json(row)


@router.delete("/v1/followers/{follower_id}", tags=["followers"], response_model=None,
               responses=answer(FollowerOut))
async def delete_follower(
    follower_id: str, container: ContainerDep,
    p: Annotated[Principal, Depends(require("follower:manage"))],
    positions: Annotated[PositionChoice, Query(
        description="close: exit orders sell the follower's open positions; keep: they "
                    "stay as they are")],
) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    done = await unfollow(container.uow(), tenant_id=p.tenant_id, follower_id=follower_id,
                          positions=positions, actor=p.subject)
    if done.exits:
        container.outbox_written.set()
    return {**follower_json(done.follower), "unfollowed": True,
            "already_unfollowed": done.already,
            "exit_orders": [child_json_from(c) for e in done.exits for c in e.children]}
