"""The helper layer every page uses (see the package docstring for how to add a page)."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from vanta.application.principal import Principal
from vanta.bootstrap import Container
from vanta.domain.errors import DomainError, NotEntitled, ValidationFailed
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.web.session import alive, principal_of

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No live session: the page sends the browser to sign in, then back to ``next``."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class PageNotFound(Exception):
    """What the user may not see looks exactly like what does not exist."""


class CsrfRefused(Exception):
    """A POST without this session's CSRF token."""


@dataclass(frozen=True)
class NavItem:
    label: str
    href: str
    visible: Callable[[Principal], bool]


def has_scope(scope: str) -> Callable[[Principal], bool]:
    return lambda p: p.has_scope(scope)


def has_role(*roles: str) -> Callable[[Principal], bool]:
    return lambda p: bool(p.roles & set(roles))


# The menu, in order. Other page modules append with ``NAV.append(NavItem(...))`` when they
# are imported by ``vanta.entrypoints.web.mount``.
NAV: list[NavItem] = [
    NavItem("Vaults", "/app/vaults", has_scope("vault:read")),
    NavItem("Followers", "/app/followers", lambda p: p.has_scope("vault:read")
            and p.follower_id is None),
    NavItem("Orders", "/app/orders", has_scope("orders:read")),
    NavItem("Dead letters", "/app/dead-letters", has_scope("orders:read")),
    NavItem("Replay", "/app/replay", has_scope("audit:read")),
    NavItem("Operations", "/app/operations", has_role("owner", "ops")),
]


def container_of(request: Request) -> Container:
    c: Container = request.app.state.container
    return c


def session_of(request: Request) -> dict[str, Any] | None:
    data: dict[str, Any] | None = request.scope.get("state", {}).get("web_session")
    return data


def current_principal(request: Request) -> Principal | None:
    """The signed-in user, or None (for pages that also serve visitors)."""
    data = session_of(request)
    idle = container_of(request).settings.web_session_idle_minutes * 60
    return principal_of(data) if data is not None and alive(data, idle) else None


def require_page_principal(request: Request, scope: str | None = None,
                           allow: Callable[[Principal], bool] | None = None) -> Principal:
    """The signed-in user, holding ``scope`` (and passing ``allow``) if given. Without a
    session: off to sign in. Without the grant: 404, as the API answers what a token may not
    see. The principal is also what the request log and audit name."""
    p = current_principal(request)
    if p is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(target)
    if (scope is not None and not p.has_scope(scope)) or (allow is not None and not allow(p)):
        raise PageNotFound()
    request.state.principal = p
    return p


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A message shown once on the next page (kind: ok | error)."""
    data = session_of(request)
    if data is not None:
        data["flash"] = [*data.get("flash", []), [kind, message]][-5:]


async def csrf_guard(request: Request) -> None:
    """Router dependency: every POST carries the session's CSRF token, as the form field
    ``csrf_token`` or the ``X-CSRF-Token`` header (htmx sends it from ``hx-headers``)."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    data = session_of(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        sent = (await request.form()).get(CSRF_FIELD)  # type: ignore[assignment]
    want = (data or {}).get("csrf")
    if not isinstance(sent, str) or not isinstance(want, str) or \
            not hmac.compare_digest(sent.encode(), want.encode()):
        raise CsrfRefused()


def page_router() -> APIRouter:
    """A router for pages: out of the OpenAPI document, CSRF checked on every POST."""
    return APIRouter(include_in_schema=False, dependencies=[Depends(csrf_guard)])


async def form_of(request: Request) -> dict[str, str]:
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


def render(request: Request, template: str, status_code: int = 200,
           **context: Any) -> HTMLResponse:
    """A page in the base layout: the user, the menu they may use, the CSRF token and the
    messages waiting for them."""
    p = current_principal(request)
    data = session_of(request) or {}
    flashes = data.pop("flash", []) if p is not None else []
    if p is not None:
        data["flash"] = []
    ctx = {"request": request, "principal": p, "csrf": data.get("csrf", ""),
           "nav": [n for n in NAV if p is not None and n.visible(p)],
           "flashes": flashes, "path": request.url.path, **context}
    return templates.TemplateResponse(request, template, ctx, status_code=status_code)


def fragment(request: Request, template: str, **context: Any) -> HTMLResponse:
    """A piece of a page for htmx (no layout, no messages consumed)."""
    data = session_of(request) or {}
    return templates.TemplateResponse(
        request, template, {"request": request, "principal": current_principal(request),
                            "csrf": data.get("csrf", ""), **context})


def back(request: Request, default: str) -> RedirectResponse:
    """After a form: back where it came from (same site only), with 303 so a reload does
    not post again."""
    target = request.headers.get("referer", "")
    base = str(request.base_url)
    path = target[len(base) - 1:] if target.startswith(base) else default
    return RedirectResponse(path if path.startswith("/app") else default, status_code=303)


PLAIN = {
    "plan_lacks_feature": "Your plan does not include this. It needs a higher plan.",
    "mode_not_in_plan": "This follower's plan does not allow that mode.",
    "vault_in_maintenance": "The vault is frozen for maintenance; lift the freeze first.",
    "kill_switch_on": "The follower's kill switch is on.",
    "follower_unfollowed": "This follower has unfollowed; its settings no longer change.",
}


def plain_words(exc: Exception) -> str:
    """An error as a sentence for people: the known codes in our words, else the service's
    own message (written for people already), never a stack trace."""
    code = getattr(exc, "code", "")
    msg = getattr(exc, "message", None) or getattr(exc, "detail", None) or str(exc)
    words = PLAIN.get(str(code))
    field = getattr(exc, "field", None)
    text = f"{words} ({msg})" if words else str(msg)
    return f"{field}: {text}" if field and not words else text


def error_page(request: Request, exc: Exception) -> Response:
    """What the app answers for an error nobody caught in a page."""
    if isinstance(exc, SignInRequired):
        url = f"/app/login?next={quote(exc.next_path, safe='')}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": url})
        return RedirectResponse(url, status_code=303)
    if isinstance(exc, PageNotFound) or (isinstance(exc, ApiProblem) and exc.status == 404) \
            or getattr(exc, "code", "").endswith("not_found"):
        return render(request, "error.html", 404, title="Not found",
                      message="There is nothing here, or nothing you may see.")
    if isinstance(exc, CsrfRefused):
        return render(request, "error.html", 403, title="Refused",
                      message="This form was not sent from this app's page (its security "
                              "token is missing or stale). Reload the page and try again.")
    if isinstance(exc, ApiProblem):
        return render(request, "error.html", exc.status, title="Not possible",
                      message=plain_words(exc))
    if isinstance(exc, DomainError):
        # the API's statuses for the same errors
        status = 403 if isinstance(exc, NotEntitled) else \
            422 if isinstance(exc, ValidationFailed) else 409
        return render(request, "error.html", status, title="Not possible",
                      message=plain_words(exc))
    raise exc
