"""RFC 9457 problem+json responses with a stable ``code`` on every error."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from vanta.application.ports.uow import Busy
from vanta.domain.errors import (
    Conflict,
    DomainError,
    InvalidTransition,
    NotEntitled,
    NotFound,
    ValidationFailed,
)

log = logging.getLogger("vanta.api")
# Query parameters refused by their declared constraints answer the code their own check
# has always answered (an unparsable cursor and an empty one alike: invalid_cursor).
QUERY_CODES = {"cursor": "invalid_cursor", "since": "invalid_since", "asof": "invalid_asof",
               "symbol": "invalid_symbol", "side": "invalid_side", "qty": "invalid_quantity",
               "ref_price": "invalid_price", "venue": "invalid_venue"}
_TEXT_REFUSALS = {"string_too_short", "string_pattern_mismatch", "literal_error"}
PROBLEM_TYPE_BASE = "https://vanta.dev/problems/"


class ApiProblem(Exception):
    def __init__(self, status: int, code: str, detail: str, *,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.extra = extra


def problem(status: int, code: str, detail: str, *, title: str | None = None,
            headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": PROBLEM_TYPE_BASE + code, "title": title or code.replace("_", " "),
            "status": status, "detail": detail, "code": code, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json",
                        headers=headers)


def _status_for(err: DomainError) -> int:
    if isinstance(err, NotFound):
        return 404
    if isinstance(err, NotEntitled):
        return 403
    if isinstance(err, Conflict | InvalidTransition):
        return 409
    if isinstance(err, ValidationFailed):
        return 422
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiProblem)
    async def _api_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return problem(exc.status, exc.code, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        extra = {"field": exc.field} if isinstance(exc, ValidationFailed) and exc.field else {}
        return problem(_status_for(exc), exc.code, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"),
                   "message": e.get("msg", "")} for e in exc.errors()]
        field = errors[0]["field"] if errors else None
        first = exc.errors()[0] if errors else {}
        loc, code = first.get("loc", ()), "validation_error"
        if len(loc) == 2 and loc[0] == "query" and str(loc[1]) in QUERY_CODES and \
                first.get("type") in _TEXT_REFUSALS:  # not the feed's numeric cursor
            code, field = QUERY_CODES[str(loc[1])], str(loc[1])  # as its own check says
        detail = f"{field}: {errors[0]['message']}" if errors else "the request is not valid"
        return problem(422, code, detail, field=field, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(getattr(exc, "headers", None) or {})
        if exc.status_code == 405:
            # One path can be served by several routes (GET and POST); list them all.
            allowed: set[str] = set()
            for route in request.app.router.routes:
                if route.matches(request.scope)[0] is not Match.NONE:
                    allowed |= set(getattr(route, "methods", None) or ())
            headers["Allow"] = ", ".join(sorted(allowed))
        return problem(exc.status_code, code, str(exc.detail), headers=headers or None)

    @app.exception_handler(Busy)
    async def _busy(_: Request, exc: Busy) -> JSONResponse:
        # nothing was written (the transaction rolled back): the same request may come again
        log.warning("store busy: %s", exc)
        return problem(503, "busy", "the service is busy; nothing was changed, retry the "
                       "same request shortly", headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error")
        return problem(500, "internal_error", "an internal error occurred; nothing was changed")
