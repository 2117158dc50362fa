"""Request bodies as Pydantic models: the one source of their validation, of the problem
codes a refusal answers, and of their OpenAPI schemas."""

from vanta.entrypoints.api.models.base import (
    RequestModel,
    body,
    documented_schemas,
    openapi_body,
    parse,
)

__all__ = ["RequestModel", "body", "documented_schemas", "openapi_body", "parse"]
