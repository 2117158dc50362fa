"""Billing bodies: plan changes, refunds, capital flows and fee period closes."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from vanta.domain.fees import MAX_MONEY_PLACES
from vanta.entrypoints.api.models.base import (
    RequestModel,
    Timestamp,
    decimal_type,
    positive_pattern,
)

Amount = decimal_type(gt=0, le=10**15, places=MAX_MONEY_PLACES,
                      pattern=positive_pattern(15, MAX_MONEY_PLACES))
Rate = decimal_type(ge=0, le=1, places=MAX_MONEY_PLACES,
                    pattern=r"^(0+(\.[0-9]{1,12})?|0*\.[0-9]{1,12}|0*1(\.0{1,12})?)$")
LABEL = r"^[A-Za-z0-9][A-Za-z0-9._:/\-]{0,63}$"


class ChangePlanIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"plan": "unknown_plan", "provider": "invalid_provider",
                                       "subscription_ref": "invalid_body"}

    plan: Literal["core", "pro", "institutional"]
    provider: Literal["stripe", "btcpay"] = "stripe"
    subscription_ref: str = Field(None, min_length=1, max_length=255)  # type: ignore[assignment]


class CancelIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"at": "invalid_cancel_at"}

    at: Literal["period_end", "now"]


class RefundIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"amount": "invalid_amount", "reason": "invalid_reason"}

    amount: Amount | None = Field(None, description="how much to give back, in the invoice's "
                                  "currency; leave it out to refund all that is left")
    reason: str | None = Field(None, max_length=500)


class FlowIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"kind": "invalid_flow_kind", "amount": "invalid_amount",
                                       "at": "invalid_at"}

    kind: Literal["deposit", "withdrawal"]
    amount: Amount
    at: Timestamp = Field(None, description="when; not in the future, "  # type: ignore[assignment]
                          "not in a closed period; leave it out for now")


class ClosePeriodIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"label": "invalid_label", "rate": "invalid_fee_rate",
                                       "end": "invalid_end"}

    label: str = Field(pattern=LABEL)
    rate: Rate
    end: Timestamp = Field(description="the period's end; not in the future")
