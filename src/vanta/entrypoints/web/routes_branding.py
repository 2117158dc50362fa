"""The tenant's brand: the owner's branding page, and the brand stylesheet every page of the
follower portal loads (the accent colour; a stylesheet because the Content-Security-Policy
allows no inline style)."""

from __future__ import annotations

from base64 import b64encode

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from vanta.application.branding import branding_of, set_branding
from vanta.domain.branding import DEFAULT_ACCENT, MAX_LOGO_BYTES, Branding
from vanta.domain.errors import DomainError
from vanta.entrypoints.web.pages import (
    NAV,
    NavItem,
    container_of,
    current_principal,
    flash,
    has_role,
    page_router,
    plain_words,
    render,
    require_page_principal,
)

router = page_router()
NAV.append(NavItem("Branding", "/app/branding", lambda p: "owner" in p.roles
                   and p.has_scope("users:manage")))


def text_on(accent: str) -> str:
    """Black or white, whichever reads better on the accent (WCAG relative luminance)."""
    def channel(i: int) -> float:
        c = int(accent[i:i + 2], 16) / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    lum = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    return "#000000" if (lum + 0.05) / 0.05 > 1.05 / (lum + 0.05) else "#ffffff"


async def brand_of(request: Request, tenant_id: str) -> Branding:
    async with container_of(request).uow(readonly=True) as uow:
        return await branding_of(uow, tenant_id)


@router.get("/brand.css")
async def brand_css(request: Request) -> Response:
    p = current_principal(request)
    accent = (await brand_of(request, p.tenant_id)).accent_color if p else DEFAULT_ACCENT
    # a stored colour is #rrggbb by construction (domain.branding), safe in CSS as it is
    css = f":root {{ --accent: {accent}; --accent-fg: {text_on(accent)}; }}\n"
    return Response(css, media_type="text/css",
                    headers={"cache-control": "private, no-cache"})


@router.get("/branding")
async def branding_page(request: Request) -> Response:
    p = require_page_principal(request, "users:manage", allow=has_role("owner"))
    return render(request, "branding.html", title="Branding",
                  brand=await brand_of(request, p.tenant_id))


async def _logo(request: Request, upload: object, remove: bool, current: Branding
                ) -> str | None:
    if remove:
        return None
    if isinstance(upload, UploadFile) and upload.filename:
        data = await upload.read(MAX_LOGO_BYTES + 1)
        kind = (upload.content_type or "").split(";")[0].strip()
        return f"data:{kind};base64,{b64encode(data).decode()}"
    return current.logo.data_url() if current.logo else None


@router.post("/branding")
async def save_branding(request: Request) -> Response:
    p = require_page_principal(request, "users:manage", allow=has_role("owner"))
    form = await request.form()
    current = await brand_of(request, p.tenant_id)
    raw = {"display_name": str(form.get("display_name", "")),
           "accent_color": str(form.get("accent_color", "")),
           "logo": await _logo(request, form.get("logo"), form.get("remove_logo") == "on",
                               current)}
    try:
        await set_branding(container_of(request).uow(), tenant_id=p.tenant_id, raw=raw,
                           actor=p.subject)
    except DomainError as e:
        flash(request, plain_words(e), "error")
    else:
        flash(request, "Branding saved. The follower portal shows it now.")
    return RedirectResponse("/app/branding", status_code=303)
