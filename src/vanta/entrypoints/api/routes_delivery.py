"""Routes for dead letters, webhook secret rotation and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from vanta.adapters import metrics
from vanta.application.dead_letters import list_dead_letters, redeliver
from vanta.application.followers import rotate_webhook_secret
from vanta.application.principal import Principal
from vanta.bootstrap import Container
from vanta.domain.errors import ValidationFailed
from vanta.entrypoints.api import jsonbody
from vanta.entrypoints.api.access import load_follower, visible_vaults
from vanta.entrypoints.api.auth import require
from vanta.entrypoints.api.render import child_json
from vanta.entrypoints.api.schemas import REDELIVER_SCHEMA, ROTATE_SCHEMA, body_schema

# 10,000 fo_ids (the documented maximum) of up to 64 characters fit; 64 KiB held ~2,000.
REDELIVER_MAX_BYTES = 1024 * 1024


def build_router(container: Container, read_json: Callable[[Request], Awaitable[Any]],
                 parse_since: Callable[[object], datetime | None]) -> APIRouter:
    r = APIRouter()

    @r.get("/v1/dead-letters", tags=["delivery"])
    async def dead_letters(p: Principal = Depends(require("orders:read")),
                           since: str | None = None,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 100
                           ) -> dict[str, Any]:
        rows = await list_dead_letters(container.uow(), tenant_id=p.tenant_id,
                                       since=parse_since(since), limit=limit,
                                       vault_ids=await visible_vaults(container, p),
                                       follower_id=p.follower_id)
        return {"queue": "mirror_dispatch_dlx",
                "data": [{**child_json(x), "dead_lettered_at": x["dead_lettered_at"]
                          and x["dead_lettered_at"].isoformat()} for x in rows]}

    @r.post("/v1/dead-letters/redeliver", tags=["delivery"],
            openapi_extra=body_schema(REDELIVER_SCHEMA))
    async def redeliver_route(request: Request,
                              p: Principal = Depends(require("mirror:manage"))
                              ) -> dict[str, Any]:
        raw = await jsonbody.read_json(request, max_bytes=REDELIVER_MAX_BYTES)
        if not isinstance(raw, dict) or set(raw) - {"fo_ids", "since"} or \
                ("fo_ids" in raw) == ("since" in raw):
            raise ValidationFailed("give either fo_ids (a list) or since (a timestamp)",
                                   code="invalid_redelivery")
        ids = raw.get("fo_ids")
        if ids is not None and (not isinstance(ids, list) or len(ids) > 10_000 or
                                not all(isinstance(i, str) for i in ids)):
            raise ValidationFailed("fo_ids must be a list of ids", code="invalid_redelivery",
                                   field="fo_ids")
        since = parse_since(raw["since"]) if "since" in raw else None
        done = await redeliver(container.uow(), tenant_id=p.tenant_id, fo_ids=ids,
                               since=since, actor=p.subject,
                               vault_ids=await visible_vaults(container, p),
                               follower_id=p.follower_id)
        if done.requeued:
            container.outbox_written.set()
        # a child outside the caller's vaults or follower is reported like an unknown id
        return {"requeued": done.requeued, "not_found": done.not_found}

    @r.post("/v1/followers/{follower_id}/webhook/rotate-secret", tags=["followers"],
            openapi_extra=body_schema(ROTATE_SCHEMA))
    async def rotate(follower_id: str, request: Request,
                     p: Principal = Depends(require("follower:manage"))) -> dict[str, Any]:
        await load_follower(container, p, follower_id)
        raw = await read_json(request) if await request.body() else {}
        return await rotate_webhook_secret(container.uow(), container.secrets,
                                           tenant_id=p.tenant_id, follower_id=follower_id,
                                           raw=raw, actor=p.subject)

    @r.get("/metrics", tags=["ops"], include_in_schema=False)
    async def prometheus() -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    return r
