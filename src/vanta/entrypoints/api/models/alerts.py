"""Alert channel bodies: a signed webhook to an operator URL, or an email address."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from vanta.entrypoints.api.models.base import RequestModel
from vanta.entrypoints.api.models.followers import Url

# One plain address (the application checks the same): no display name, no white space.
EMAIL = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+$"
AlertKindName = Literal["dead_letter", "endpoint_disabled", "broker_lost_order", "test"]


class AlertChannelIn(RequestModel):
    """``kind`` webhook with ``url``, or email with ``email``; ``kinds`` narrows the alerts
    the channel receives (default: all)."""

    codes: ClassVar[dict[str, str]] = {"kind": "invalid_alert_channel",
                                       "kind:missing": "invalid_alert_channel",
                                       "url": "invalid_webhook_url", "email": "invalid_email",
                                       "kinds": "invalid_alert_kinds",
                                       "*:extra_forbidden": "invalid_alert_channel"}
    body_code: ClassVar[str] = "invalid_alert_channel"
    model_config = RequestModel.model_config | ConfigDict(json_schema_extra={
        "oneOf": [{"properties": {"kind": {"const": "webhook"}}, "required": ["url"]},
                  {"properties": {"kind": {"const": "email"}}, "required": ["email"]}]})

    kind: Literal["webhook", "email"]
    url: Url = None  # type: ignore[assignment]
    email: str = Field(None, pattern=EMAIL, max_length=254)  # type: ignore[assignment]
    kinds: list[AlertKindName] = Field(None, min_length=1, max_length=8)  # type: ignore[assignment]
