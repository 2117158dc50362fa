"""Request bodies of reconciliation: a run, a threshold, a follower's position report."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import Field, StringConstraints, WithJsonSchema

from vanta.domain.reconciliation import MAX_THRESHOLD_BPS
from vanta.entrypoints.api.models.base import RequestModel, Timestamp, WholeNumber
from vanta.entrypoints.api.models.orders import SYMBOL

# the schema spelled out: Pydantic writes a constraint inside a union as "ge"/"le"
Bps = Annotated[WholeNumber, Field(ge=0, le=MAX_THRESHOLD_BPS),
                WithJsonSchema({"type": "integer", "minimum": 0,
                                "maximum": MAX_THRESHOLD_BPS})]
SymbolKey = Annotated[str, StringConstraints(pattern=SYMBOL)]
# a signed quantity (short positions are negative), plain decimal notation
SignedQty = Annotated[str, StringConstraints(pattern=r"^-?(0|[1-9][0-9]{0,8})(\.[0-9]{1,12})?$")]


class ReconcileIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"dry_run": "invalid_boolean"}

    dry_run: bool = Field(True, strict=True, description="true (the default): report only; "
                          "false: dispatch the fix-ups")


class ThresholdIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"threshold_bps": "invalid_threshold"}

    threshold_bps: WholeNumber = Field(ge=0, le=MAX_THRESHOLD_BPS,
                                       description="drift allowed, in basis points of the "
                                       "follower's NAV (0 to 10,000)")


class FollowerThresholdIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"threshold_bps": "invalid_threshold"}

    threshold_bps: Bps | None = Field(description="this follower's own threshold (0 to "
                                      "10,000 bps); null falls back to the vault's")


class PositionsIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"positions": "invalid_positions",
                                       "as_of": "invalid_as_of"}

    positions: dict[SymbolKey, SignedQty] = Field(
        max_length=1_000, json_schema_extra={"additionalProperties": False},
        description="symbol -> signed quantity held (decimal strings); symbols left out "
        "are not held")
    as_of: Timestamp = Field(None, description="when the positions were "  # type: ignore[assignment]
                             "observed (not in the future); leave it out for now")
