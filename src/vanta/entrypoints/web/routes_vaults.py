"""Vault pages: list, detail with active overlays (live TTL countdown), the flip and persona
forms (refused with the plan's reason), and the maintenance freeze behind a confirmation."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from vanta.application.clock import utcnow
from vanta.application.overlays import apply_overlay
from vanta.application.principal import Principal
from vanta.application.tenancy import tenant_entitlements
from vanta.domain.entitlements import Feature, decide
from vanta.domain.errors import DomainError, ValidationFailed
from vanta.domain.overlays import PERSONA_BUY_MULTIPLIER
from vanta.entrypoints.api.access import require_vault, vault_not_found, visible_vaults
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


@router.get("/vaults")
async def vaults(request: Request) -> Response:
    p = require_page_principal(request, "vault:read")
    c = container_of(request)
    visible = await visible_vaults(c, p)
    async with c.uow(readonly=True) as uow:
        rows = [v for v in await uow.vaults.list(p.tenant_id)
                if visible is None or v.vault_id in visible]
        counts = {} if p.follower_id else {
            v.vault_id: len(await uow.followers.list_for_vault(p.tenant_id, v.vault_id))
            for v in rows}
    return render(request, "vaults.html", title="Vaults", vaults=rows, counts=counts)


async def _plan_refusals(c: Any, p: Principal) -> dict[str, str]:
    """Why the plan refuses flip mode or persona boosts (empty when it allows them)."""
    async with c.uow(readonly=True) as uow:
        ent = await tenant_entitlements(uow, p.tenant_id)
    out = {}
    for feature, name in ((Feature.FLIP_MODE, "flip"), (Feature.PERSONA_BOOSTS, "persona")):
        if not decide(ent, feature).allowed:
            out[name] = (f"Your plan ({ent.plan_id or 'none'}) does not include "
                         f"{feature.value.replace('_', ' ')}; it needs Pro or above.")
    return out


@router.get("/vaults/{vault_id}")
async def vault(request: Request, vault_id: str) -> Response:
    p = require_page_principal(request, "vault:read")
    c = container_of(request)
    await require_vault(c, p, vault_id)
    now = utcnow()
    async with c.uow(readonly=True) as uow:
        row = await uow.vaults.get(p.tenant_id, vault_id)
        if row is None:
            raise vault_not_found(vault_id)
        active = await uow.overlays.active(vault_id, now)
        followers = None if p.follower_id else len(
            await uow.followers.list_for_vault(p.tenant_id, vault_id))
    manage = p.has_scope("mirror:manage")
    return render(request, "vault.html", title=row.label, vault=row, overlays=active,
                  follower_count=followers, manage=manage,
                  refusals=await _plan_refusals(c, p) if manage else {},
                  personas=list(PERSONA_BUY_MULTIPLIER))


def _ttl(form: dict[str, str]) -> int:
    try:
        return int(form.get("ttl_minutes") or 30)
    except ValueError:
        raise ValidationFailed("TTL must be a whole number of minutes", code="invalid_ttl",
                               field="ttl_minutes") from None


def _overlay_request(form: dict[str, str]) -> dict[str, Any]:
    kind = form.get("kind")
    if kind == "flip":
        raw: dict[str, Any] = {"flip": {"amplify": form.get("amplify") or "0",
                                        "ttl_minutes": _ttl(form)}}
        if form.get("persona"):
            raw["persona"] = form["persona"]
        return raw
    if kind == "persona":
        return {"persona": form.get("persona") or "", "ttl_minutes": _ttl(form)}
    raise ValidationFailed("choose flip mode or a persona boost", code="invalid_overlay")


@router.post("/vaults/{vault_id}/overlay")
async def overlay(request: Request, vault_id: str) -> Response:
    p = require_page_principal(request, "mirror:manage")
    c = container_of(request)
    await require_vault(c, p, vault_id)
    form = await form_of(request)
    try:
        await apply_overlay(c.uow(), tenant_id=p.tenant_id, vault_id=vault_id,
                            raw=_overlay_request(form), actor=p.subject)
    except DomainError as e:
        if e.code.endswith("not_found"):
            raise
        flash(request, f"Refused: {plain_words(e)}", "error")
    else:
        flash(request, "Overlay applied.")
    return back(request, f"/app/vaults/{vault_id}")


@router.post("/vaults/{vault_id}/maintenance")
async def maintenance(request: Request, vault_id: str) -> Response:
    """Turning the freeze on asks first (a second POST with ``confirm=yes``); lifting it
    does not."""
    p = require_page_principal(request, "mirror:manage")
    c = container_of(request)
    await require_vault(c, p, vault_id)
    form = await form_of(request)
    enable = form.get("enabled") == "true"
    if enable and form.get("confirm") != "yes":
        async with c.uow(readonly=True) as uow:
            row = await uow.vaults.get(p.tenant_id, vault_id)
        if row is None:
            raise vault_not_found(vault_id)
        return render(request, "confirm_freeze.html", title="Freeze the vault?", vault=row)
    result = await apply_overlay(c.uow(), tenant_id=p.tenant_id, vault_id=vault_id,
                                 raw={"maintenance": {"enabled": enable}}, actor=p.subject)
    if not enable:
        c.outbox_written.set()  # held deliveries may go now, as after the API call
    flash(request, "Vault frozen: new orders are refused and deliveries held."
          if result["maintenance"]["enabled"] else "Freeze lifted: deliveries resume.")
    return RedirectResponse(f"/app/vaults/{vault_id}", status_code=303)
