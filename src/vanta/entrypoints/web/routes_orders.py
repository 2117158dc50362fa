"""Order pages: manager orders with a live feed (server-sent events), an order's children
(paginated, refreshed in place by htmx) with their attempts, the order's DAG as SVG, a
follower's orders, and dead letters with redelivery."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sse_starlette.sse import EventSourceResponse

from vanta.application.clock import utcnow
from vanta.application.dag import order_dag
from vanta.application.dead_letters import list_dead_letters, redeliver
from vanta.application.principal import Principal
from vanta.entrypoints.api.access import (
    order_not_found,
    visible_children,
    visible_order,
    visible_vaults,
)
from vanta.entrypoints.api.pagination import decode, encode
from vanta.entrypoints.web.dag import dag_svg
from vanta.entrypoints.web.pages import (
    back,
    container_of,
    flash,
    fragment,
    page_router,
    render,
    require_page_principal,
    templates,
)

router = page_router()
PAGE = 50
DAG_CHILDREN = 12  # drawn on the order page; the table pages through the rest
FEED_POLL_S = 1.0


def _next(rows: list[Any], key: str) -> str | None:
    if len(rows) <= PAGE:
        return None
    last = rows[PAGE - 1]
    return encode(last.created_at, getattr(last, key))


@router.get("/orders")
async def orders(request: Request, cursor: str | None = None,
                 vault_id: str | None = None) -> Response:
    p = require_page_principal(request, "orders:read")
    c = container_of(request)
    vaults = await visible_vaults(c, p)
    since = utcnow() - timedelta(days=7)
    async with c.uow(readonly=True) as uow:
        rows = await uow.manager_orders.list(p.tenant_id, since, PAGE + 1,
                                             vault_id=vault_id or None, after=decode(cursor),
                                             vault_ids=vaults, with_snapshot=False)
    shown = [r for r in rows[:PAGE] if visible_order(p, vaults, r)]
    nxt = _next(rows, "mo_id")
    return render(request, "orders.html", title="Orders", orders=shown,
                  next_url=f"/app/orders?cursor={nxt}" if nxt else None)


@router.get("/orders/stream")
async def stream(request: Request) -> Response:
    """New manager orders the user may see, as table rows, while the page is open."""
    p = require_page_principal(request, "orders:read")
    c = container_of(request)

    async def events() -> AsyncIterator[dict[str, Any]]:
        seen: set[str] = set()
        since = utcnow() - timedelta(seconds=2)
        while not await request.is_disconnected():
            vaults = await visible_vaults(c, p)
            async with c.uow(readonly=True) as uow:
                rows = await uow.manager_orders.list(p.tenant_id, since, 200,
                                                     vault_ids=vaults, with_snapshot=False)
            for r in rows:
                if r.mo_id in seen or not visible_order(p, vaults, r):
                    continue
                seen.add(r.mo_id)
                html = templates.get_template("_order_row.html").render(o=r)
                yield {"event": "order", "data": html.replace("\n", " ")}
            await asyncio.sleep(FEED_POLL_S)

    return EventSourceResponse(events(), ping=15)


async def _order(request: Request, p: Principal, mo_id: str) -> tuple[Any, Any]:
    c = container_of(request)
    vaults = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        # without its snapshot (every follower's inputs: megabytes for 10,000 followers)
        row = (await uow.manager_orders.get_many_unscoped([mo_id])).get(mo_id)
    if row is not None and row.tenant_id != p.tenant_id:
        row = None  # tenant scoping: another tenant's order is unknown here
    if row is None or not visible_order(p, vaults, row):
        raise order_not_found(mo_id)
    return row, vaults


async def _children(request: Request, p: Principal, mo_id: str, vaults: Any,
                    cursor: str | None) -> dict[str, Any]:
    c = container_of(request)
    async with c.uow(readonly=True) as uow:
        rows = await uow.child_orders.list(p.tenant_id, follower_id=p.follower_id,
                                           mo_id=mo_id, since=None, limit=PAGE + 1,
                                           after=decode(cursor), vault_ids=vaults)
    nxt = _next(rows, "fo_id")
    return {"children": visible_children(p, vaults, rows[:PAGE]), "mo_id": mo_id,
            "cursor": cursor or "",
            "next_url": f"/app/orders/{mo_id}?cursor={nxt}" if nxt else None}


@router.get("/orders/{mo_id}")
async def order(request: Request, mo_id: str, cursor: str | None = None) -> Response:
    p = require_page_principal(request, "orders:read")
    row, vaults = await _order(request, p, mo_id)
    ctx = await _children(request, p, mo_id, vaults, cursor)
    return render(request, "order.html", title=f"Order {row.client_order_id or mo_id}",
                  o=row, **ctx)


@router.get("/orders/{mo_id}/children")
async def children(request: Request, mo_id: str, cursor: str | None = None) -> Response:
    """The children table alone: htmx swaps it in every few seconds."""
    p = require_page_principal(request, "orders:read")
    _, vaults = await _order(request, p, mo_id)
    return fragment(request, "_children.html",
                    **await _children(request, p, mo_id, vaults, cursor or None))


@router.get("/orders/{mo_id}/dag")
async def dag(request: Request, mo_id: str) -> Response:
    p = require_page_principal(request, "orders:read")
    _, vaults = await _order(request, p, mo_id)
    c = container_of(request)
    got = await order_dag(c.uow(readonly=True), p.tenant_id, mo_id, limit=DAG_CHILDREN,
                          follower_id=p.follower_id, vault_ids=vaults)
    more = got.next_after is not None
    return fragment(request, "_dag.html", svg=dag_svg(got.dag, more=more), more=more,
                    drawn=got.children)


@router.get("/child-orders/{fo_id}/attempts")
async def attempts(request: Request, fo_id: str) -> Response:
    p = require_page_principal(request, "orders:read")
    c = container_of(request)
    vaults = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        child = await uow.child_orders.get(p.tenant_id, fo_id)
        if child is None or not visible_children(p, vaults, [child]):
            raise order_not_found(fo_id)
        rows = await uow.attempts.list(fo_id)
    return fragment(request, "_attempts.html", attempts=rows, fo_id=fo_id)


@router.get("/orders-by-follower")
async def follower_orders(request: Request, follower_id: str = "",
                          cursor: str | None = None) -> Response:
    p = require_page_principal(request, "orders:read")
    c = container_of(request)
    if p.follower_id is not None:
        follower_id = p.follower_id
    vaults = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        rows = await uow.child_orders.list(p.tenant_id, follower_id=follower_id or None,
                                           mo_id=None, since=None, limit=PAGE + 1,
                                           after=decode(cursor), vault_ids=vaults)
    nxt = _next(rows, "fo_id")
    return render(request, "follower_orders.html", title="Follower orders",
                  children=visible_children(p, vaults, rows[:PAGE]), follower_id=follower_id,
                  next_url=f"/app/orders-by-follower?follower_id={follower_id}&cursor={nxt}"
                  if nxt else None)


@router.get("/dead-letters")
async def dead_letters(request: Request, cursor: str | None = None) -> Response:
    p = require_page_principal(request, "orders:read")
    c = container_of(request)
    rows = await list_dead_letters(c.uow(), tenant_id=p.tenant_id, since=None,
                                   limit=PAGE + 1, vault_ids=await visible_vaults(c, p),
                                   follower_id=p.follower_id, after=decode(cursor))
    nxt = None
    if len(rows) > PAGE:
        last = rows[PAGE - 1]
        nxt = encode(last.dead_lettered_at or utcnow(), last.fo_id)
    return render(request, "dead_letters.html", title="Dead letters", rows=rows[:PAGE],
                  manage=p.has_scope("mirror:manage"),
                  next_url=f"/app/dead-letters?cursor={nxt}" if nxt else None)


@router.post("/dead-letters/redeliver")
async def redeliver_page(request: Request) -> Response:
    p = require_page_principal(request, "mirror:manage")
    c = container_of(request)
    form = await request.form()
    fo_ids = [str(v) for v in form.getlist("fo_id")][:10_000]
    if not fo_ids:
        flash(request, "Choose at least one dead letter to redeliver.", "error")
        return back(request, "/app/dead-letters")
    done = await redeliver(c.uow(), tenant_id=p.tenant_id, fo_ids=fo_ids, since=None,
                           actor=p.subject, vault_ids=await visible_vaults(c, p),
                           follower_id=p.follower_id)
    if done.requeued:
        c.outbox_written.set()
    flash(request, f"{len(done.requeued)} queued again for delivery"
          + (f"; {len(done.not_found)} not found." if done.not_found else "."))
    return back(request, "/app/dead-letters")
