"""Follower bodies: registration, settings changes, NAVs and webhook secret rotation."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StrictBool, WithJsonSchema

from vanta.domain.money import MAX_DECIMAL_PLACES, MAX_SCALE
from vanta.entrypoints.api.models.base import (
    NOT_WS,
    NestedModel,
    RequestModel,
    Timestamp,
    WholeNumber,
    decimal_type,
    positive_pattern,
)
from vanta.entrypoints.api.models.orders import Nav

Scale = decimal_type(gt=0, le=MAX_SCALE, places=MAX_DECIMAL_PLACES,
                     pattern=positive_pattern(3, MAX_DECIMAL_PLACES))
Usd = decimal_type(gt=0, le=10**12, places=2, pattern=positive_pattern(12, 2))
Percent = decimal_type(gt=0, lt=100, places=MAX_DECIMAL_PLACES,
                       pattern=positive_pattern(2, MAX_DECIMAL_PLACES),
                       description="a percentage, above 0 and below 100")
SYMBOL = r"^[A-Za-z0-9._/\-]{1,32}$"
Symbol = Annotated[str, Field(pattern=SYMBOL)]
# Pydantic would state the keys as patternProperties, which leave other keys free
SymbolMap = Annotated[dict[Symbol, Symbol], WithJsonSchema({
    "type": "object", "maxProperties": 1000, "propertyNames": {"pattern": SYMBOL},
    "additionalProperties": {"type": "string", "pattern": SYMBOL}})]
# An absolute http(s) URL with a host (RFC 3986 name characters or a bracketed IPv6
# address) and no user:password@ part.
_H = "[0-9A-Fa-f]{1,4}"
IPV6 = "|".join([f"({_H}:){{7}}{_H}", f"({_H}:){{1,7}}:", f"({_H}:){{1,6}}:{_H}",
                 *(f"({_H}:){{1,{6 - n}}}(:{_H}){{1,{n + 1}}}" for n in range(1, 5)),
                 f"{_H}:(:{_H}){{1,6}}", f":((:{_H}){{1,7}}|:)"])
HTTP_URL = (rf"^[Hh][Tt][Tt][Pp][Ss]?://(\[({IPV6})\]|[A-Za-z0-9._~%!$&'()*+,;=\-]+)"
            rf"(:[0-9]{{0,5}})?([/?#]{NOT_WS}*)?$")
SETTING_CODES = {
    "label": "invalid_label", "mode": "invalid_mode", "scale": "invalid_scale",
    "max_pos_usd": "invalid_cap", "kill_switch": "invalid_boolean", "paused": "invalid_boolean",
    "scale_mode": "invalid_scale_mode", "nav_multiplier": "invalid_scale",
    "fractional": "invalid_boolean", "protections": "invalid_protections",
    "protections.allow_symbols": "invalid_symbol", "protections.deny_symbols": "invalid_symbol",
    "protections.symbol_map": "invalid_symbol", "plan": "invalid_plan",
    "overlay_opt_in": "invalid_boolean", "webhook.url": "invalid_webhook_url",
    "webhook_url": "invalid_webhook_url"}


class ProtectionsIn(NestedModel):
    drawdown_stop_pct: Percent | None = None
    daily_loss_limit_usd: Usd | None = None
    max_order_usd: Usd | None = None
    allow_symbols: list[Symbol] | None = Field(None, max_length=1000)
    deny_symbols: list[Symbol] | None = Field(None, max_length=1000)
    symbol_map: SymbolMap | None = Field(None, max_length=1000)


def _mode(*modes: str) -> dict[str, Any]:
    return {"required": ["mode"], "properties": {"mode": {"enum": list(modes)}}}


_CAP = {"required": ["max_pos_usd"], "properties": {"max_pos_usd": {"not": {"type": "null"}}}}
# What the server checks between fields at registration, stated for the schema: capped mode
# needs a cap, a cap needs capped (or shadow) mode, and capped mode (named, or implied by a
# cap without a mode) needs the pro or institutional plan.
CAP_RULES = [
    {"if": _mode("capped"), "then": _CAP},
    {"if": _mode("proportional"), "then": {"not": _CAP}},
    {"if": {"anyOf": [_mode("capped"), {**_CAP, "not": _mode("proportional", "shadow")}]},
     "then": {"required": ["plan"], "properties": {"plan": {"enum": ["pro", "institutional"]}}}},
]


class SettingsIn(RequestModel):
    """What a follower's owner may set; on a PATCH only what is sent changes."""

    label: str = Field("", max_length=200)
    mode: Literal["proportional", "capped", "shadow"] | None = Field(
        None, description="capped needs max_pos_usd; a cap without a mode means capped")
    scale: Scale = 1
    max_pos_usd: Usd | None = None
    kill_switch: StrictBool = False
    paused: StrictBool = False
    scale_mode: Literal["fixed", "nav_ratio"] | None = None
    nav_multiplier: Scale = 1
    fractional: StrictBool = False
    protections: ProtectionsIn | None = None
    plan: Literal["core", "pro", "institutional"] = "core"
    overlay_opt_in: StrictBool = False


Url = Annotated[str, Field(max_length=2048, pattern=HTTP_URL)]


class WebhookIn(NestedModel):
    url: Url


class PaperCredentials(NestedModel):
    # credentials are strings: a key is left out, never null
    cash: str = Field(None, description="starting cash of the "  # type: ignore[assignment]
                      "paper account")
    url: Url = Field(None, description="a `vanta paper venue`; "  # type: ignore[assignment]
                     "else in-process")


class AlpacaCredentials(NestedModel):
    key_id: str
    secret_key: str
    base_url: Url = None  # type: ignore[assignment]


class TradierCredentials(NestedModel):
    access_token: str
    account_id: str
    base_url: Url = None  # type: ignore[assignment]


class CoinbaseCredentials(NestedModel):
    api_key: str
    api_secret: str
    api_url: Url = None  # type: ignore[assignment]


# credentials, when given, is an object (leave it out when there are none): null is refused
class PaperBridge(NestedModel):
    broker: Literal["paper"]
    credentials: PaperCredentials = None  # type: ignore[assignment]


class AlpacaBridge(NestedModel):
    broker: Literal["alpaca"]
    credentials: AlpacaCredentials


class TradierBridge(NestedModel):
    broker: Literal["tradier"]
    credentials: TradierCredentials


class CoinbaseBridge(NestedModel):
    broker: Literal["coinbase"]
    credentials: CoinbaseCredentials


class SpotCredentials(NestedModel):
    api_key: str
    api_secret: str


class SpotBridge(NestedModel):
    """Binance or Kraken spot through ccxt."""

    broker: Literal["binance", "kraken"]
    credentials: SpotCredentials


BridgedIn = Annotated[PaperBridge | AlpacaBridge | TradierBridge | CoinbaseBridge | SpotBridge,
                      Field(discriminator="broker")]


class FollowerIn(SettingsIn):
    """Registration: a webhook or a bridged broker account, exactly one of them."""

    codes: ClassVar[dict[str, str]] = {
        **SETTING_CODES, "bridged": "invalid_bridge", "bridged:missing": "invalid_bridge",
        "bridged:extra_forbidden": "invalid_bridge",
        "bridged:union_tag_invalid": "unknown_broker", "sync": "invalid_boolean"}
    tagged: ClassVar[frozenset[str]] = frozenset({"bridged"})
    model_config = RequestModel.model_config | ConfigDict(json_schema_extra={"oneOf": [
        {"required": ["bridged"]},
        {"anyOf": [{"required": ["webhook"]}, {"required": ["webhook_url"]}]}],
        "allOf": CAP_RULES})

    webhook: WebhookIn = None  # type: ignore[assignment]
    webhook_url: Url = Field(None, description="another name for webhook.url")
    bridged: BridgedIn = None
    sync: StrictBool = Field(False, description="size buys that bring the new follower to "
                             "the manager's current positions")


class WebhookPatch(NestedModel):
    url: Url = None  # type: ignore[assignment]
    enabled: Literal[True] = Field(None, description="true lifts a "  # type: ignore[assignment]
                                   "disable (a receiver disables with 410)")
    model_config = NestedModel.model_config | ConfigDict(
        json_schema_extra={"minProperties": 1})


class FollowerPatch(SettingsIn):
    codes: ClassVar[dict[str, str]] = {**SETTING_CODES, "webhook": "invalid_webhook",
                                       "webhook:extra_forbidden": "invalid_webhook"}
    model_config = RequestModel.model_config | ConfigDict(
        json_schema_extra={"minProperties": 1})

    webhook: WebhookPatch = None  # type: ignore[assignment]


class NavIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"nav": "invalid_nav", "as_of": "invalid_as_of"}

    nav: Nav
    # null is refused, as the schema always said: leave as_of out to mean now
    as_of: Timestamp = Field(None, description="when the NAV was "  # type: ignore[assignment]
                             "observed (not in the future); leave it out for now")


# whsec_ and the base64 of 24 to 64 bytes
WHSEC = (r"^whsec_((?:[A-Za-z0-9+/]{4}){8,21}(?:[A-Za-z0-9+/]{2}==)?"
         r"|(?:[A-Za-z0-9+/]{4}){8,20}[A-Za-z0-9+/]{3}=)$")


class RotateIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"overlap_seconds": "invalid_overlap",
                                       "secret": "invalid_secret"}

    overlap_seconds: WholeNumber = Field(86_400, ge=0, le=604_800)
    secret: str = Field(None, pattern=WHSEC,  # type: ignore[assignment]
                               description="Institutional plan: bring your own whsec_ key "
                               "(24 to 64 bytes, base64)")
