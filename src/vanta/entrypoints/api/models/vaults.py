"""Vault bodies: creation and settings, overlays (flip, persona, maintenance) and instrument
trading rules."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field, StrictBool

from vanta.domain.money import MAX_DECIMAL_PLACES
from vanta.entrypoints.api.models.base import (
    NestedModel,
    RequestModel,
    decimal_type,
    non_negative_pattern,
    positive_pattern,
)

# 1 to 60 minutes; checked on the exact value, before any duration is computed from it
Ttl = decimal_type(ge=1, le=60,
                   pattern=r"^0*([1-9]|[1-5][0-9])(\.[0-9]{1,12})?$|^0*60(\.0{1,12})?$",
                   description="minutes, 1 to 60")
Amplify = decimal_type(ge=-0.9, le=1, pattern=(
    r"^(0+(\.[0-9]{1,12})?|0*\.[0-9]{1,12}|0*1(\.0{1,12})?"
    r"|-(0+(\.[0-8][0-9]{0,11})?|0*\.[0-8][0-9]{0,11}|0*\.90{0,11}))$"),
    description="flip multiplies buys by 1 + amplify, amplify in [-0.9, 1.0]")
Step = decimal_type(gt=0, le=10**9, places=MAX_DECIMAL_PLACES,
                    pattern=positive_pattern(9, MAX_DECIMAL_PLACES))
Notional = decimal_type(ge=0, le=10**9, places=MAX_DECIMAL_PLACES,
                        pattern=non_negative_pattern(9, MAX_DECIMAL_PLACES))


class FlipIn(NestedModel):
    amplify: Amplify = 0
    ttl_minutes: Ttl = Field(None, description="default 30")  # type: ignore[assignment]


class MaintenanceIn(NestedModel):
    enabled: StrictBool


_WITHOUT_MAINTENANCE = {"not": {"required": ["maintenance"]}}


class OverlayIn(RequestModel):
    """One of: ``flip`` (with an optional ``persona``), ``persona``, or ``maintenance`` on
    its own."""

    codes: ClassVar[dict[str, str]] = {
        "persona": "unknown_persona", "ttl_minutes": "invalid_ttl",
        "flip.ttl_minutes": "invalid_ttl", "flip.amplify": "invalid_amplify",
        "flip": "invalid_overlay", "maintenance": "invalid_overlay",
        "flip:extra_forbidden": "invalid_overlay", "maintenance:missing": "invalid_overlay",
        "maintenance:extra_forbidden": "invalid_overlay"}
    model_config = RequestModel.model_config | ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["maintenance"], "maxProperties": 1},
        {"required": ["flip"], **_WITHOUT_MAINTENANCE},
        {"required": ["persona"], **_WITHOUT_MAINTENANCE}]})

    flip: FlipIn = None  # type: ignore[assignment]
    persona: Literal["Athena", "Apollo", "Ares", "Nemesis"] = None  # type: ignore[assignment]
    ttl_minutes: Ttl = Field(None, description="default 30")  # type: ignore[assignment]
    maintenance: MaintenanceIn = None  # type: ignore[assignment]


class InstrumentIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"*": "invalid_instrument"}

    lot_step: Step
    min_qty: Step | None = Field(None, description="default lot_step")
    min_notional: Notional | None = None
    fractional_step: Step | None = Field(None, description="for brokers that trade "
                                         "fractions; not above lot_step")


Persona = Literal["Athena", "Apollo", "Ares", "Nemesis"]
DrawdownPct = decimal_type(gt=0, lt=100, places=MAX_DECIMAL_PLACES,
                           pattern=positive_pattern(2, MAX_DECIMAL_PLACES),
                           description="a percentage, above 0 and below 100")
VAULT_SETTING_CODES = {
    "label": "invalid_label", "public": "invalid_boolean", "personas": "unknown_persona",
    "risk_profile": "invalid_risk_profile", "risk_profile:extra_forbidden":
    "invalid_risk_profile", "rails": "invalid_rails", "rails:extra_forbidden": "invalid_rails",
    "vault_id": "invalid_vault_id"}


class RiskProfileIn(NestedModel):
    max_drawdown_pct: DrawdownPct = None  # type: ignore[assignment]
    style: Literal["conservative", "balanced", "aggressive"] = None  # type: ignore[assignment]


class RailsIn(NestedModel):
    fiat: StrictBool = None  # type: ignore[assignment]
    crypto: StrictBool = None  # type: ignore[assignment]


class VaultSettingsIn(RequestModel):
    """What a vault's owner may set; on a PATCH only what is sent changes (within
    ``risk_profile`` and ``rails`` too)."""

    codes: ClassVar[dict[str, str]] = VAULT_SETTING_CODES
    label: str = Field(None, max_length=200)  # type: ignore[assignment]
    public: StrictBool = None  # type: ignore[assignment]
    # distinct names: the application refuses repeats with the same code
    personas: list[Persona] = Field(None, min_length=1, max_length=4,  # type: ignore[assignment]
                                    json_schema_extra={"uniqueItems": True})
    risk_profile: RiskProfileIn = None  # type: ignore[assignment]
    rails: RailsIn = None  # type: ignore[assignment]


class VaultIn(VaultSettingsIn):
    """A new vault; counted against the plan's vault limit."""

    vault_id: str = Field(None, pattern=r"^[A-Za-z0-9_\-]{1,64}$",  # type: ignore[assignment]
                          description="default: a generated id")


class VaultPatch(VaultSettingsIn):
    model_config = RequestModel.model_config | ConfigDict(
        json_schema_extra={"minProperties": 1})
