"""Forms a visitor posts before having a session (sign-up, accepting an invitation): no
session CSRF token exists yet, so each such form carries a random value that must equal the
one in a short, signed, HttpOnly cookie set with the form (a double submit: another site can
neither read the cookie nor set it)."""

from __future__ import annotations

import secrets
import time

from fastapi import Request
from fastapi.responses import Response

from vanta.entrypoints.web.pages import CsrfRefused
from vanta.entrypoints.web.session import Signer, set_cookie

VISITOR_COOKIE = "vanta_form"
VISITOR_TTL_S = 1800
FIELD = "form_token"


def _signer(request: Request) -> Signer:
    s: Signer = request.app.state.signer
    return s


def issue(request: Request) -> str:
    """A fresh value for the form; :func:`attach` puts it in the cookie too."""
    return secrets.token_urlsafe(24)


def attach(request: Request, response: Response, value: str) -> Response:
    cookie = _signer(request).dumps({"v": value, "exp": int(time.time()) + VISITOR_TTL_S},
                                    "visitor-form")
    set_cookie(request, response, VISITOR_COOKIE, cookie, max_age=VISITOR_TTL_S)
    return response


def check(request: Request, form: dict[str, str]) -> None:
    data = _signer(request).loads(request.cookies.get(VISITOR_COOKIE), "visitor-form")
    sent = form.get(FIELD, "")
    if data is None or data.get("exp", 0) < time.time() or not sent or \
            not secrets.compare_digest(str(data.get("v")), sent):
        raise CsrfRefused()
