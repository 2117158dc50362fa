"""Per request of the web app: read the session cookie, write it back when it changed (or to
slide the idle timeout), and send the security headers (Content-Security-Policy first)."""

from __future__ import annotations

import json
import time
from http.cookies import SimpleCookie
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vanta.entrypoints.web.session import SESSION_COOKIE, Signer, alive, set_cookie

# Scripts, styles and images from this origin only: no inline script or style anywhere
# (htmx is told not to inject its indicator style), no framing, forms post here only.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
SLIDE_EVERY_S = 30  # rewrite the cookie to extend the idle timeout at most this often


def _cookie(scope: Scope, name: str) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == b"cookie":
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(value.decode("latin-1"))
            except Exception:
                continue
            if name in jar:
                return jar[name].value
    return None


class WebSessionMiddleware:
    def __init__(self, app: ASGIApp, *, signer: Signer, idle_seconds: int) -> None:
        self.app = app
        self.signer = signer
        self.idle = idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        data = self.signer.loads(_cookie(scope, SESSION_COOKIE), "session")
        had = data is not None
        if data is not None and not alive(data, self.idle):
            data = None  # idle too long, or past the sign-in token's expiry: signed out
        state: dict[str, Any] = scope.setdefault("state", {})
        state["web_session"] = data
        before = json.dumps(data, sort_keys=True)

        async def send_wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    headers.setdefault(k, v)
                headers.setdefault("cache-control", "no-store")
                for raw in self._cookie_headers(scope, state, before, had):
                    headers.append("set-cookie", raw)
            await send(message)

        await self.app(scope, receive, send_wrapped)

    def _cookie_headers(self, scope: Scope, state: dict[str, Any], before: str,
                        had: bool) -> list[str]:
        if state.get("web_session_written"):  # the route set or cleared it itself
            return []
        data = state.get("web_session")
        now = time.time()
        if data is None:
            if not had:
                return []
            resp = Response()
            resp.delete_cookie(SESSION_COOKIE, path="/app", httponly=True, samesite="lax",
                               secure=scope.get("scheme") == "https")
            return [v for k, v in resp.headers.items() if k == "set-cookie"]
        slide = now - float(data.get("seen", 0)) > SLIDE_EVERY_S
        if json.dumps(data, sort_keys=True) == before and not slide:
            return []
        data["seen"] = int(now)
        resp = Response()
        set_cookie(Request(scope), resp, SESSION_COOKIE, self.signer.dumps(data, "session"),
                   max_age=int(max(1, float(data.get("exp", now)) - now)))
        return [v for k, v in resp.headers.items() if k == "set-cookie"]
