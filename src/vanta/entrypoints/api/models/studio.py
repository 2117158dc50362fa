"""Replay Studio bodies: a run's window, starting NAV and up to 8 follower configurations
(each one the follower API's settings, plus fee terms), and the answer's shape."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field

from vanta.domain.studio import MAX_CONFIGS
from vanta.domain.studio_windows import MAX_WINDOW_ORDERS
from vanta.entrypoints.api.models.base import (
    NestedModel,
    RequestModel,
    Timestamp,
    WholeNumber,
    decimal_type,
    non_negative_pattern,
    positive_pattern,
)
from vanta.entrypoints.api.models.followers import CAP_RULES, SETTING_CODES, SettingsIn
from vanta.entrypoints.api.models.responses import Answer

# a string up to 1 exactly (a digit pattern alone would admit "5", which the server refuses)
Rate = decimal_type(ge=0, le=1, places=12,
                    pattern=r"^(0+(\.[0-9]{1,12})?|0*\.[0-9]{1,12}|0*1(\.0{1,12})?)$",
                    description="the performance fee rate, 0 to 1")
Money = decimal_type(ge=0, le=10**13, places=8, pattern=non_negative_pattern(13, 8))
StartingNav = decimal_type(gt=0, le=10**13, places=8, pattern=positive_pattern(13, 8),
                           description="the simulated follower's cash at the window's start")


class FeesIn(NestedModel):
    rate: Rate = 0
    high_water_mark: Money = Field(None, description="the mark to "  # type: ignore[assignment]
                                   "beat at the start; the starting NAV when left out")
    period: Literal["month", "week", "day"] = "month"


class StudioConfigIn(SettingsIn):
    """The follower API's settings (validated the same way), and fee terms. ``label``
    names the configuration in the answer; ``overlay_opt_in`` turns overlays on."""

    # the registration's rules between fields (capped mode, its cap and its plan)
    model_config = SettingsIn.model_config | ConfigDict(json_schema_extra={"allOf": CAP_RULES})

    fees: FeesIn = None  # type: ignore[assignment]


_CONFIG_CODES = {f"configs.{i}.{k}": v for i in range(MAX_CONFIGS)
                 for k, v in {**SETTING_CODES, "fees": "invalid_fees",
                              "fees.rate": "invalid_fee_rate"}.items()}


class StudioRunIn(RequestModel):
    """A window is from/to or last, never both; neither means the newest 1,000 orders."""

    model_config = RequestModel.model_config | ConfigDict(json_schema_extra={"not": {
        "required": ["last"], "anyOf": [{"required": ["from"]}, {"required": ["to"]}]}})
    codes: ClassVar[dict[str, str]] = {
        **_CONFIG_CODES, "vault_id": "invalid_vault_id", "from": "invalid_window",
        "to": "invalid_window", "last": "invalid_window", "starting_nav": "invalid_nav",
        "follower_id": "invalid_follower_id", "configs": "invalid_config",
        "configs:too_long": "too_many_configs", "configs:too_short": "too_many_configs"}

    vault_id: str = Field(min_length=1, max_length=64)
    from_: Timestamp = Field(None, alias="from",  # type: ignore[assignment]
                             description="the window's first order time (with to, or up to now)")
    to: Timestamp = Field(None, description="the window's last order time, not "  # type: ignore[assignment]
                          "before from; without from, from the vault's first order")
    last: WholeNumber = Field(None, ge=1, le=MAX_WINDOW_ORDERS,  # type: ignore[assignment]
                              description="the last N orders, instead of from/to (the plan "
                              "may allow fewer)")
    starting_nav: StartingNav
    follower_id: str = Field(None, min_length=1, max_length=64,  # type: ignore[assignment]
                             description="a follower of the vault whose recorded children "
                             "and fills are shown beside the simulation")
    configs: list[StudioConfigIn] = Field(min_length=1, max_length=MAX_CONFIGS)


class StudioRunOut(Answer):
    run_id: str
    sha256: str
    engine_version: str
    request: dict[str, Any]
    orders: int
    summary: list[dict[str, Any]]
    actual: dict[str, Any] | None
    rows: list[dict[str, Any]]
    equity_curve: dict[str, Any]
    differing_orders: list[int] | None = None  # with a follower: orders unlike its own
