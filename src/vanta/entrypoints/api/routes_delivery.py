"""Routes for dead letters, webhook secret rotation and metrics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response

from vanta.application.dead_letters import list_dead_letters, redeliver
from vanta.application.followers import rotate_webhook_secret
from vanta.application.principal import Principal
from vanta.domain.errors import ValidationFailed
from vanta.entrypoints.api.access import load_follower, visible_vaults
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.deps import ContainerDep, Cursor, Limit, Since, parse_since
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.delivery import RedeliverIn
from vanta.entrypoints.api.models.followers import RotateIn
from vanta.entrypoints.api.pagination import decode, keyset_page
from vanta.entrypoints.api.render import child_json

# 10,000 fo_ids (the documented maximum) of up to 64 characters fit; 64 KiB held ~2,000.
REDELIVER_MAX_BYTES = 1024 * 1024

router = APIRouter()
_UNDATED = datetime.min.replace(tzinfo=UTC)


@router.get("/v1/dead-letters", tags=["delivery"])
async def dead_letters(container: ContainerDep,
                       p: Principal = Depends(require("orders:read")),
                       since: Since = None, limit: Limit = 100, cursor: Cursor = None
                       ) -> dict[str, Any]:
    after = decode(cursor)
    rows = await list_dead_letters(container.uow(), tenant_id=p.tenant_id,
                                   since=parse_since(since), limit=limit + 1,
                                   vault_ids=await visible_vaults(container, p),
                                   follower_id=p.follower_id, after=after)
    # a dead letter always has its time; the floor only keeps the cursor well-formed
    return {"queue": "mirror_dispatch_dlx",
            **keyset_page(rows, limit, [{**child_json(x), "dead_lettered_at":
                                         x.dead_lettered_at and x.dead_lettered_at.isoformat()}
                                        for x in rows[:limit]],
                          lambda x: (x.dead_lettered_at or _UNDATED, x.fo_id))}


@router.post("/v1/dead-letters/redeliver", tags=["delivery"],
             openapi_extra=openapi_body(RedeliverIn))
async def redeliver_route(container: ContainerDep,
                          p: Annotated[Principal, Depends(require("mirror:manage"))],
                          req: Annotated[RedeliverIn, body(RedeliverIn,
                                                           max_bytes=REDELIVER_MAX_BYTES)]
                          ) -> dict[str, Any]:
    if (req.fo_ids is None) == (req.since is None):
        raise ValidationFailed("give either fo_ids (a list) or since (a timestamp)",
                               code="invalid_redelivery")
    done = await redeliver(container.uow(), tenant_id=p.tenant_id, fo_ids=req.fo_ids,
                           since=req.since, actor=p.subject,
                           vault_ids=await visible_vaults(container, p),
                           follower_id=p.follower_id)
    if done.requeued:
        container.outbox_written.set()
    # a child outside the caller's vaults or follower is reported like an unknown id
    return {"requeued": done.requeued, "not_found": done.not_found}


# The body is optional: without one the new secret is generated and the old one keeps
# signing for a day (what the server always did; the schema now says so too).
@router.post("/v1/followers/{follower_id}/webhook/rotate-secret", tags=["followers"],
             openapi_extra=openapi_body(RotateIn, required=False))
async def rotate(follower_id: str, container: ContainerDep,
                 p: Annotated[Principal, Depends(require("follower:manage"))],
                 req: Annotated[RotateIn, body(RotateIn, required=False)]) -> dict[str, Any]:
    await load_follower(container, p, follower_id)
    return await rotate_webhook_secret(container.uow(), container.secrets,
                                       tenant_id=p.tenant_id, follower_id=follower_id,
                                       raw=req.to_raw(), actor=p.subject)


@router.get("/metrics", tags=["ops"], include_in_schema=False)
async def prometheus(container: ContainerDep) -> Response:
    body_, content_type = container.metrics_exposition()
    return Response(body_, media_type=content_type)
