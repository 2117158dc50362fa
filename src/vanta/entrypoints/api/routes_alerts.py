"""Routes for the tenant's alert channels: where its operators are told about dead letters,
endpoints disabled by a 410 and orders a broker lost. Tenant-wide settings: owner and ops
(``mirror:manage``), with a token that is not narrowed to some vaults or a follower."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import JSONResponse

from vanta.application.alert_channels import (
    add_channel,
    channel_json,
    list_channels,
    remove_channel,
    send_test_alert,
)
from vanta.application.principal import Principal
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.alerts import AlertChannelIn
from vanta.entrypoints.api.problems import ApiProblem

router = APIRouter()
SCOPE = "mirror:manage"


def _tenant_wide(p: Principal) -> Principal:
    if p.vault_ids is not None or p.follower_id is not None:
        raise ApiProblem(403, "insufficient_scope", "alert channels are tenant-wide: a token "
                         "narrowed to vaults or to a follower cannot manage them",
                         required_scope=SCOPE)
    return p


@router.get("/v1/alert-channels", tags=["alerts"])
async def channels(container: ContainerDep,
                   p: Annotated[Principal, Depends(require(SCOPE))]) -> dict[str, Any]:
    rows = await list_channels(container.uow(), _tenant_wide(p).tenant_id)
    return {"items": [channel_json(c) for c in rows]}


@router.post("/v1/alert-channels", status_code=201, tags=["alerts"], response_model=None,
             openapi_extra=openapi_body(AlertChannelIn))
async def create_channel(container: ContainerDep,
                         p: Annotated[Principal, Depends(require(SCOPE))],
                         new: Annotated[AlertChannelIn, body(AlertChannelIn)]) -> JSONResponse:
    row, secret = await add_channel(container.uow(), container.secrets,
                                    tenant_id=_tenant_wide(p).tenant_id, raw=new.to_raw(),
                                    actor=p.subject, vetter=container.vetter,
                                    email_enabled=bool(container.settings.smtp_host))
    out = channel_json(row)
    if secret is not None:  # shown this once: deliveries are signed with it
        out["signing_secret"] = secret
    return JSONResponse(out, status_code=201)


@router.delete("/v1/alert-channels/{channel_id}", status_code=204, tags=["alerts"],
               response_class=Response)
async def delete_channel(channel_id: str, container: ContainerDep,
                         p: Annotated[Principal, Depends(require(SCOPE))]) -> Response:
    await remove_channel(container.uow(), container.secrets,
                         tenant_id=_tenant_wide(p).tenant_id, channel_id=channel_id,
                         actor=p.subject)
    return Response(status_code=204)


@router.post("/v1/alert-channels/{channel_id}/test", status_code=202, tags=["alerts"])
async def test_channel(channel_id: str, container: ContainerDep,
                       p: Annotated[Principal, Depends(require(SCOPE))]) -> dict[str, Any]:
    """Queue a test alert to this channel only; the scheduler sends it within seconds."""
    alert_id = await send_test_alert(container.uow(), tenant_id=_tenant_wide(p).tenant_id,
                                     channel_id=channel_id, actor=p.subject)
    return {"alert_id": alert_id, "state": "pending"}
