"""A request's headers are limited to ``MAX_HEADER_BYTES`` (16 KiB) in total.

Over the limit the answer is ``431 request_header_too_large`` (problem+json), before any token
is verified or any bucket taken. The same limit is enforced twice: here, for every ASGI server
(and in-process clients), and by the HTTP parser under ``vanta serve``
(:mod:`vanta.entrypoints.cli.http_protocol`), which never hands a larger head to the app and
answers with the same problem instead of a bare 400.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from vanta.entrypoints.api.problems import PROBLEM_TYPE_BASE, problem

__all__ = ["CODE", "MAX_HEADER_BYTES", "HeaderLimitMiddleware", "problem_body"]

MAX_HEADER_BYTES = 16 * 1024
CODE = "request_header_too_large"
_DETAIL = f"the request's headers exceed {MAX_HEADER_BYTES} bytes"


def problem_body() -> bytes:
    """The 431 problem as bytes, for the HTTP parser that answers outside the app."""
    return json.dumps({"type": PROBLEM_TYPE_BASE + CODE, "title": "request header too large",
                       "status": 431, "detail": _DETAIL, "code": CODE,
                       "max_header_bytes": MAX_HEADER_BYTES}).encode()


class HeaderLimitMiddleware:
    """Add it outside the rate limiter: an oversized token is never parsed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_HEADER_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # name, ": " and CRLF per header, as on the wire
            size = sum(len(k) + len(v) + 4 for k, v in scope.get("headers") or ())
            if size > self.max_bytes:
                await problem(431, CODE, _DETAIL, title="request header too large",
                              headers={"Connection": "close"},
                              max_header_bytes=self.max_bytes)(scope, receive, send)
                return
        await self.app(scope, receive, send)
