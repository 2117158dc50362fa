"""Delivery bodies: dead-letter redelivery."""

from __future__ import annotations

from typing import ClassVar

from pydantic import ConfigDict, Field

from vanta.entrypoints.api.models.base import RequestModel, Timestamp


class RedeliverIn(RequestModel):
    """Either ``fo_ids`` or ``since``."""

    codes: ClassVar[dict[str, str]] = {"since": "invalid_since", "fo_ids": "invalid_redelivery",
                                       "*": "invalid_redelivery",
                                       "*:extra_forbidden": "invalid_redelivery"}
    body_code: ClassVar[str] = "invalid_redelivery"
    model_config = RequestModel.model_config | ConfigDict(json_schema_extra={
        "oneOf": [{"required": ["fo_ids"]}, {"required": ["since"]}]})

    fo_ids: list[str] = Field(None, max_length=10_000)  # type: ignore[assignment]
    since: Timestamp = None  # type: ignore[assignment]
