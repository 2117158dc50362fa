"""OpenAPI pieces that are not request bodies: the problem+json answer every error has.
Request bodies are the Pydantic models of ``vanta.entrypoints.api.models``."""

from __future__ import annotations

from typing import Any

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "code": {"type": "string"}, "field": {"type": ["string", "null"]}},
}

_ERRORS = {
    400: "malformed request (bad JSON, missing Idempotency-Key)",
    401: "missing or refused bearer token",
    403: "the token lacks the scope, or the plan lacks the feature",
    404: "not found (or not visible to this caller)",
    409: "conflicts with the current state",
    413: "body too large",
    422: "validation failed; `field` names the input",
    429: "rate limited; see Retry-After",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text,
             "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
    for status, text in _ERRORS.items()
}

# Only operations that take a JSON body can answer it (``models.base.openapi_body``).
UNSUPPORTED_MEDIA_TYPE: dict[str, Any] = {
    "description": "the body is not sent as application/json",
    "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}},
}
