"""Follower pages: the filterable, paginated list; registration (webhook or bridged broker);
the edit form with the sizing preview shown before saving; the kill switch; secret rotation
(the new secret shown once); the NAV history chart."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from vanta.application.clock import utcnow
from vanta.application.followers import patch_follower, register_follower, rotate_webhook_secret
from vanta.application.preview import preview_change
from vanta.application.principal import Principal
from vanta.domain.errors import DomainError, ValidationFailed
from vanta.entrypoints.api.access import load_follower, require_vault, visible_vaults
from vanta.entrypoints.web.charts import line_chart
from vanta.entrypoints.web.pages import (
    back,
    container_of,
    flash,
    form_of,
    page_router,
    plain_words,
    render,
    require_page_principal,
)

router = page_router()
PAGE = 25
STATES = {"": "any state", "kill": "kill switch on", "paused": "paused", "active": "active"}
SETTINGS = ("label", "scale", "max_pos_usd", "mode", "plan")
FLAGS = ("kill_switch", "paused", "fractional", "overlay_opt_in")


async def _visible_vault_rows(request: Request, p: Principal) -> list[Any]:
    c = container_of(request)
    visible = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        return [v for v in await uow.vaults.list(p.tenant_id)
                if visible is None or v.vault_id in visible]


def _matches(f: Any, q: str, state: str) -> bool:
    if q and q.lower() not in f.label.lower() and q != f.follower_id:
        return False
    return {"kill": f.kill_switch, "paused": f.paused,
            "active": not (f.kill_switch or f.paused)}.get(state, True)


@router.get("/followers")
async def followers(request: Request, vault_id: str = "", q: str = "", state: str = "",
                    after: str = "") -> Response:
    p = require_page_principal(request, "vault:read")
    c = container_of(request)
    vaults = await _visible_vault_rows(request, p)
    chosen = [v for v in vaults if not vault_id or v.vault_id == vault_id]
    async with c.uow(readonly=True) as uow:
        rows = [f for v in chosen for f in await uow.followers.list_for_vault(
            p.tenant_id, v.vault_id) if p.may_see_follower(f.follower_id)]
    rows = sorted((f for f in rows if _matches(f, q, state)),
                  key=lambda f: (f.created_at, f.follower_id))
    if after:  # keyset page: the rows after the last one shown
        ids = [f.follower_id for f in rows]
        rows = rows[ids.index(after) + 1:] if after in ids else []
    shown = rows[:PAGE]
    next_url = None
    if len(rows) > PAGE:
        next_url = "/app/followers?" + urlencode({"vault_id": vault_id, "q": q,
                                                   "state": state,
                                                   "after": shown[-1].follower_id})
    return render(request, "followers.html", title="Followers", followers=shown,
                  vaults=vaults, vault_id=vault_id, q=q, state=state, states=STATES,
                  next_url=next_url, manage=p.has_scope("follower:manage"))


@router.get("/followers/new")
async def new_follower(request: Request, vault_id: str = "") -> Response:
    p = require_page_principal(request, "follower:manage")
    vaults = await _visible_vault_rows(request, p)
    return render(request, "follower_new.html", title="Register a follower", vaults=vaults,
                  vault_id=vault_id, form={})


def _registration(form: dict[str, str]) -> dict[str, Any]:
    raw: dict[str, Any] = {"label": form.get("label", ""),
                           "scale": form.get("scale") or "1",
                           "plan": form.get("plan") or "core"}
    if form.get("max_pos_usd"):
        raw["max_pos_usd"] = form["max_pos_usd"]
    if form.get("kind") == "bridged":
        creds = form.get("credentials") or "{}"
        try:
            parsed = json.loads(creds)
        except ValueError:
            raise ValidationFailed("credentials must be a JSON object",
                                   code="invalid_credentials", field="credentials") from None
        raw["bridged"] = {"broker": form.get("broker") or "paper", "credentials": parsed}
    else:
        raw["webhook"] = {"url": form.get("webhook_url", "")}
    return raw


@router.post("/followers/new")
async def register(request: Request) -> Response:
    p = require_page_principal(request, "follower:manage")
    c = container_of(request)
    form = await form_of(request)
    vault_id = form.get("vault_id", "")
    await require_vault(c, p, vault_id)
    try:
        row, secret = await register_follower(c.uow(), c.secrets, tenant_id=p.tenant_id,
                                              vault_id=vault_id, raw=_registration(form),
                                              actor=p.subject, vetter=c.vetter)
    except DomainError as e:
        if e.code == "vault_not_found":
            raise
        vaults = await _visible_vault_rows(request, p)
        return render(request, "follower_new.html", 422, title="Register a follower",
                      vaults=vaults, vault_id=vault_id, form=form, error=plain_words(e))
    # shown on this answer only: never put in a URL, a cookie or a log
    return render(request, "secret_once.html", title="Follower registered", follower=row,
                  secret=secret, what="registered")


async def _nav_chart(request: Request, p: Principal, follower_id: str) -> str | None:
    c = container_of(request)
    async with c.uow(readonly=True) as uow:
        hist = await uow.navs.history("follower", [follower_id], utcnow())
    points = hist.get(follower_id, [])[-500:]  # the latest 500 reports
    return line_chart([("NAV", points)], title="NAV history", unit="USD") if points else None


@router.get("/followers/{follower_id}")
async def follower(request: Request, follower_id: str) -> Response:
    p = require_page_principal(request, "vault:read")
    c = container_of(request)
    row = await load_follower(c, p, follower_id)
    return render(request, "follower.html", title=row.label or row.follower_id, f=row,
                  manage=p.has_scope("follower:manage"),
                  chart=await _nav_chart(request, p, follower_id))


PROTECTION_NUMBERS = ("drawdown_stop_pct", "daily_loss_limit_usd", "max_order_usd")
PROTECTION_LISTS = ("allow_symbols", "deny_symbols")


def _protections_from(form: dict[str, str], current: Any) -> dict[str, Any]:
    """The protections as the form shows them; the symbol map (not on the form) is kept."""
    out: dict[str, Any] = {k: form.get(k, "").strip() or None for k in PROTECTION_NUMBERS}
    for key in PROTECTION_LISTS:
        out[key] = [x.strip().upper() for x in form.get(key, "").split(",") if x.strip()]
    out["symbol_map"] = dict((current or {}).get("symbol_map") or {})
    return out


def _patch_from(form: dict[str, str], current_protections: Any = None) -> dict[str, Any]:
    raw: dict[str, Any] = {"protections": _protections_from(form, current_protections)}
    for key in SETTINGS:
        value = form.get(key, "").strip()
        if key == "max_pos_usd":
            raw[key] = value or None
        elif value or key == "label":
            raw[key] = value
    for key in FLAGS:
        raw[key] = form.get(key) == "on"
    return raw


@router.get("/followers/{follower_id}/edit")
async def edit(request: Request, follower_id: str) -> Response:
    p = require_page_principal(request, "follower:manage")
    row = await load_follower(container_of(request), p, follower_id)
    return render(request, "follower_edit.html", title=f"Edit {row.label}", f=row,
                  form=None, preview=None)


@router.post("/followers/{follower_id}/edit")
async def edit_post(request: Request, follower_id: str) -> Response:
    """``action=preview`` sizes the recent orders with the proposed settings beside the
    current ones and shows them; ``action=save`` saves (audited with the user as actor)."""
    p = require_page_principal(request, "follower:manage")
    c = container_of(request)
    row = await load_follower(c, p, follower_id)
    form = await form_of(request)
    raw = _patch_from(form, row.protections)
    try:
        if form.get("action") == "save":
            await patch_follower(c.uow(), tenant_id=p.tenant_id, follower_id=follower_id,
                                 raw=raw, actor=p.subject, vetter=c.vetter)
            flash(request, "Settings saved.")
            return RedirectResponse(f"/app/followers/{follower_id}", status_code=303)
        preview = await preview_change(c.uow(), tenant_id=p.tenant_id,
                                       follower_id=follower_id, raw=raw, asof=utcnow())
    except DomainError as e:
        if e.code == "follower_not_found":
            raise
        return render(request, "follower_edit.html", 422, title=f"Edit {row.label}", f=row,
                      form=form, preview=None, error=plain_words(e))
    return render(request, "follower_edit.html", title=f"Edit {row.label}", f=row,
                  form=form, preview=preview)


@router.post("/followers/{follower_id}/kill-switch")
async def kill_switch(request: Request, follower_id: str) -> Response:
    p = require_page_principal(request, "follower:manage")
    c = container_of(request)
    await load_follower(c, p, follower_id)
    on = (await form_of(request)).get("on") == "true"
    try:
        await patch_follower(c.uow(), tenant_id=p.tenant_id, follower_id=follower_id,
                             raw={"kill_switch": on}, actor=p.subject)
    except DomainError as e:
        if e.code == "follower_not_found":
            raise
        flash(request, plain_words(e), "error")
    else:
        flash(request, "Kill switch on: no new orders reach this follower." if on
              else "Kill switch off: orders reach this follower again.")
    return back(request, f"/app/followers/{follower_id}")


@router.post("/followers/{follower_id}/rotate-secret")
async def rotate(request: Request, follower_id: str) -> Response:
    p = require_page_principal(request, "follower:manage")
    c = container_of(request)
    row = await load_follower(c, p, follower_id)
    form = await form_of(request)
    try:
        hours = int(form.get("overlap_hours") or 24)
        answer = await rotate_webhook_secret(
            c.uow(), c.secrets, tenant_id=p.tenant_id, follower_id=follower_id,
            raw={"overlap_seconds": hours * 3600}, actor=p.subject)
    except (DomainError, ValueError) as e:
        if getattr(e, "code", "") == "follower_not_found":
            raise
        flash(request, plain_words(e), "error")
        return back(request, f"/app/followers/{follower_id}")
    return render(request, "secret_once.html", title="New webhook secret", follower=row,
                  secret=answer.get("webhook_secret") or answer.get("secret"),
                  what="rotated", answer=answer)
