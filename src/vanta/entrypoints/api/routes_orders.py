"""Routes for vaults, their followers, manager orders and follower orders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from vanta.application.followers import register_follower
from vanta.application.manager_orders import (
    parse_order_input,
    submit_manager_order,
    sync_follower,
)
from vanta.application.principal import Principal
from vanta.entrypoints.api.access import (
    order_not_found,
    require_vault,
    vault_not_found,
    visible_children,
    visible_order,
    visible_vaults,
)
from vanta.entrypoints.api.auth import BEARER_SECURITY, PlainRoute, authorize, require
from vanta.entrypoints.api.deps import ContainerDep, Cursor, Limit, Since, parse_since
from vanta.entrypoints.api.models import body, openapi_body
from vanta.entrypoints.api.models.followers import FollowerIn
from vanta.entrypoints.api.models.orders import OrderIn
from vanta.entrypoints.api.models.responses import (
    ChildPage,
    FollowerCreated,
    FollowerPage,
    OrderCreated,
    OrderDetail,
    OrderPage,
    VaultDetail,
    answer,
)
from vanta.entrypoints.api.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    cursor_key,
    decode,
    encode_key,
    keyset_page,
    page,
    query_paging,
)
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.api.render import (
    attempt_json,
    child_json,
    child_json_from,
    follower_json,
    order_json,
    vault_json,
)

# An order's answer (POST and GET) lists its children up to this many; one list size for both.
ORDER_CHILDREN_LIMIT = 100_000
RENDERED_LIMIT = 10_000  # tenants whose rendered vault list is kept, bounded like the cache

router = APIRouter()
MoId = Annotated[str | None, Query(min_length=1, description="only this manager order's "
                                   "children")]


async def tenant_vaults(request: Request, tenant_id: str) -> tuple[Any, ...]:
    container = request.app.state.container

    async def load() -> list[Any]:
        async with container.uow(readonly=True) as uow:
            return await uow.vaults.list(tenant_id)
    return await request.app.state.vaults_cache.rows(tenant_id, load)  # type: ignore[no-any-return]


# The hottest read: auth is a plain call instead of Depends(require(...)), and the route
# is called directly (PlainRoute): FastAPI's parameter solving cost more than the rest of
# the route. Same answers, same OpenAPI operation.
def _vault_page(rows: Sequence[Any], limit: int,
                vaults: frozenset[str] | None) -> dict[str, Any]:
    """``rows``: up to ``limit + 1`` vaults in (created_at, vault_id) order."""
    return keyset_page(rows, limit, [vault_json(r) for r in rows[:limit]
                                     if vaults is None or r.vault_id in vaults],
                       lambda r: (r.created_at, r.vault_id))


async def list_vaults(request: Request) -> Response:
    p = await authorize(request, "vault:read")
    limit, cursor = query_paging(request.query_params)
    after = decode(cursor)
    vaults = await visible_vaults(request.app.state.container, p)
    if after is not None:  # later pages: read from the database, past the cursor
        async with request.app.state.container.uow(readonly=True) as uow:
            rows: Sequence[Any] = await uow.vaults.page(p.tenant_id, after, limit + 1)
        return JSONResponse(_vault_page(rows, limit, vaults))
    # the first page comes from the cached list, which is in the same order
    rows = await tenant_vaults(request, p.tenant_id)  # cached: no database round trip on a hit
    if vaults is not None:
        return JSONResponse(_vault_page(rows[:limit + 1], limit, vaults))
    rendered: dict[str, tuple[tuple[Any, ...], int, bytes]] = \
        request.app.state.rendered_vaults
    done = rendered.get(p.tenant_id)
    if done is None or done[0] is not rows or done[1] != limit:  # once per fill and limit
        done = rows, limit, JSONResponse(_vault_page(rows[:limit + 1], limit, None)).body
        if len(rendered) >= RENDERED_LIMIT:
            rendered.clear()
        rendered[p.tenant_id] = done
    return Response(done[2], media_type="application/json")


# PlainRoute solves no parameters, so the two it reads by hand are documented here
_VAULT_PAGING = [
    {"name": "limit", "in": "query", "required": False,
     "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                "default": DEFAULT_LIMIT}},
    {"name": "cursor", "in": "query", "required": False,
     "description": "next_cursor of the page before; only cursors this API issued are valid",
     "schema": {"type": "string", "minLength": 1}},
]
router.add_api_route("/v1/vaults", list_vaults, methods=["GET"], tags=["vaults"],
                     response_model=dict[str, Any],
                     openapi_extra={**BEARER_SECURITY, "parameters": _VAULT_PAGING},
                     route_class_override=PlainRoute)


@router.get("/v1/vaults/{vault_id}", tags=["vaults"], response_model=None,
            responses=answer(VaultDetail))
async def get_vault(vault_id: str, container: ContainerDep,
                    p: Principal = Depends(require("vault:read"))) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    async with container.uow(readonly=True) as uow:
        row = await uow.vaults.get(p.tenant_id, vault_id)
        if row is None:
            raise vault_not_found(vault_id)
        if p.follower_id is not None:
            # a follower sees its own place in the vault, not the size of everyone's book
            return vault_json(row)
        followers = await uow.followers.list_for_vault(p.tenant_id, vault_id)
    return {**vault_json(row), "follower_count": len(followers)}


@router.get("/v1/vaults/{vault_id}/followers", tags=["followers"], response_model=None,
            responses=answer(FollowerPage))
async def list_followers(vault_id: str, container: ContainerDep,
                         p: Principal = Depends(require("vault:read")),
                         limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    await require_vault(container, p, vault_id)
    after = cursor_key(cursor)
    async with container.uow(readonly=True, lag_ok=True) as uow:
        if await uow.vaults.get(p.tenant_id, vault_id) is None:
            raise ApiProblem(404, "vault_not_found", f"vault {vault_id} not found")
        rows = await uow.followers.page_for_vault(p.tenant_id, vault_id, after, limit + 1)
    rows = [r for r in rows if p.may_see_follower(r.follower_id)]
    more = len(rows) > limit
    return {"data": [follower_json(r) for r in rows[:limit]],
            "next_cursor": encode_key(rows[limit - 1].follower_id) if more else None}


@router.post("/v1/vaults/{vault_id}/followers", status_code=201, tags=["followers"],
             openapi_extra=openapi_body(FollowerIn),
             responses=answer(FollowerCreated, 201, "registered; the webhook secret is "
                              "shown this once"))
async def add_follower(vault_id: str, container: ContainerDep,
                       p: Annotated[Principal, Depends(require("follower:manage"))],
                       new: Annotated[FollowerIn, body(FollowerIn)]) -> JSONResponse:
    await require_vault(container, p, vault_id)
    row, secret = await register_follower(container.uow(), container.secrets,
                                          tenant_id=p.tenant_id, vault_id=vault_id,
                                          raw=new.to_raw(), actor=p.subject,
                                          vetter=container.vetter)
    answer = {**follower_json(row), "webhook_secret": secret}  # the only time it is shown
    if new.sync:
        synced = await sync_follower(container.uow(), tenant_id=p.tenant_id,
                                     vault_id=vault_id, follower_id=row.follower_id,
                                     actor=p.subject)
        answer["sync_orders"] = [child_json_from(c) for e in synced for c in e.children]
        container.outbox_written.set()
    return JSONResponse(answer, status_code=201)


@router.post("/v1/manager-orders", status_code=201, tags=["orders"],
             openapi_extra=openapi_body(OrderIn),
             responses={**answer(OrderCreated, 201, "ingested and expanded"),
                        **answer(OrderCreated, 200, "the same order was already ingested")})
async def post_manager_order(container: ContainerDep,
                             p: Annotated[Principal, Depends(require("mirror:manage"))],
                             new: Annotated[OrderIn, body(OrderIn)]) -> JSONResponse:
    order = parse_order_input(new.to_raw())
    await require_vault(container, p, order.vault_id)
    result = await submit_manager_order(container.uow(), tenant_id=p.tenant_id,
                                        order=order, source="api", actor=p.subject,
                                        require_instrument=(
                                            container.settings.require_instrument_rules))
    if result.created:
        container.outbox_written.set()
    row = result.record
    assert row is not None  # the submission hands back the order's row, written or found
    if result.expansion is not None:  # just expanded: counted without reading them back
        counts: dict[str, int] = {}
        for c in result.expansion.children:
            if p.may_see_follower(c.follower_id):
                counts[c.state.value] = counts.get(c.state.value, 0) + 1
    else:
        async with container.uow(readonly=True) as uow:
            counts = await uow.child_orders.state_counts(p.tenant_id, order.mo_id,
                                                         p.follower_id)
    # The children are not rendered here: at 10,000 followers that took longer than the
    # expansion itself. They are read a page at a time from the link.
    answer = {**order_json(row), "created": result.created,
              "children_total": sum(counts.values()), "counts": counts,
              "links": {"children": f"/v1/manager-orders/{order.mo_id}/children"}}
    return JSONResponse(answer, status_code=201 if result.created else 200)


@router.get("/v1/manager-orders", tags=["orders"], response_model=None,
            responses=answer(OrderPage))
async def list_manager_orders(
    container: ContainerDep, p: Principal = Depends(require("orders:read")),
    since: Since = None, vault_id: str | None = None, limit: Limit = 100,
    cursor: Cursor = None,
) -> dict[str, Any]:
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True, lag_ok=True) as uow:
        rows = await uow.manager_orders.list(p.tenant_id, parse_since(since), limit + 1,
                                             vault_id=vault_id, after=decode(cursor),
                                             vault_ids=vaults)
    # the cursor follows the rows read, so hiding one never ends the listing early
    return page(rows, limit, "mo_id",
                [order_json(r) for r in rows[:limit] if visible_order(p, vaults, r)])


@router.get("/v1/manager-orders/{mo_id}", tags=["orders"], response_model=None,
            responses=answer(OrderDetail))
async def get_manager_order(mo_id: str, container: ContainerDep,
                            p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True) as uow:
        row = await uow.manager_orders.get(p.tenant_id, mo_id)
        if row is None or not visible_order(p, vaults, row):
            raise order_not_found(mo_id)
        children = await uow.child_orders.list(p.tenant_id, follower_id=None, mo_id=mo_id,
                                               since=None, limit=ORDER_CHILDREN_LIMIT)
    return {**order_json(row),
            "children": [child_json(c) for c in visible_children(p, vaults, children)]}


@router.get("/v1/manager-orders/{mo_id}/children", tags=["orders"], response_model=None,
            responses=answer(ChildPage))
async def list_order_children(mo_id: str, container: ContainerDep,
                              p: Principal = Depends(require("orders:read")),
                              limit: Limit = 100, cursor: Cursor = None) -> dict[str, Any]:
    """One manager order's children in (created_at, fo_id) order, by cursor."""
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True) as uow:
        row = await uow.manager_orders.get(p.tenant_id, mo_id)
        if row is None or not visible_order(p, vaults, row):
            raise order_not_found(mo_id)
        rows = await uow.child_orders.list(p.tenant_id, follower_id=p.follower_id,
                                           mo_id=mo_id, since=None, limit=limit + 1,
                                           after=decode(cursor), vault_ids=vaults)
    return page(rows, limit, "fo_id", [child_json(r) for r in rows])


@router.get("/v1/follower-orders", tags=["orders"], response_model=None,
            responses=answer(ChildPage))
async def list_follower_orders(
    container: ContainerDep, p: Principal = Depends(require("orders:read")),
    follower_id: str | None = None, since: Since = None, limit: Limit = 100,
    cursor: Cursor = None, mo_id: MoId = None,
) -> dict[str, Any]:
    if p.follower_id is not None:
        if follower_id not in (None, p.follower_id):
            raise ApiProblem(404, "follower_not_found", f"follower {follower_id} not found")
        follower_id = p.follower_id
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True, lag_ok=True) as uow:
        rows = await uow.child_orders.list(p.tenant_id, follower_id=follower_id, mo_id=mo_id,
                                           since=parse_since(since), limit=limit + 1,
                                           after=decode(cursor), vault_ids=vaults)
    return page(rows, limit, "fo_id", [child_json(r) for r in rows])


@router.get("/v1/follower-orders/{fo_id}/attempts", tags=["orders"])
async def list_attempts(fo_id: str, container: ContainerDep,
                        p: Principal = Depends(require("orders:read"))) -> dict[str, Any]:
    vaults = await visible_vaults(container, p)
    async with container.uow(readonly=True, lag_ok=True) as uow:
        child = await uow.child_orders.get(p.tenant_id, fo_id)
        if child is None or not visible_children(p, vaults, [child]):
            raise ApiProblem(404, "follower_order_not_found", f"order {fo_id} not found")
        rows = await uow.attempts.list(fo_id)
    return {"data": [attempt_json(r) for r in rows]}
