"""Answers of the core resources, documented in OpenAPI (``responses=answer(Model)``).

They describe what ``render.py`` writes; the routes keep returning plain dicts (the hot
paths serialise once, without a response model pass). Quantities and prices are exact
decimal strings. Objects may grow new keys (``additionalProperties`` is not closed)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

DecimalString = str


class Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


class VaultOut(Answer):
    vault_id: str
    label: str
    rails: Any
    personas: Any
    risk_profile: Any
    public: bool
    maintenance: bool
    created_at: str | None


class VaultDetail(VaultOut):
    follower_count: int | None = None  # not shown to a follower's token


class WebhookOut(Answer):
    url: str
    enabled: bool
    disabled_reason: str | None


class BridgedOut(Answer):
    broker: str


class FollowerOut(Answer):
    follower_id: str
    vault_id: str
    label: str
    mode: Literal["proportional", "capped", "shadow"]
    scale: DecimalString
    max_pos_usd: DecimalString | None
    kill_switch: bool
    paused: bool
    paused_reason: str | None
    scale_mode: Literal["fixed", "nav_ratio"]
    nav_multiplier: DecimalString
    fractional: bool
    protections: dict[str, Any]
    plan: Literal["core", "pro", "institutional"]
    overlay_opt_in: bool
    webhook: WebhookOut | None
    bridged: BridgedOut | None
    created_at: str | None
    updated_at: str | None


class FollowerCreated(FollowerOut):
    webhook_secret: str  # shown this once
    sync_orders: list[dict[str, Any]] | None = None


class FollowerPage(Answer):
    data: list[FollowerOut]
    next_cursor: str | None


class ChildOut(Answer):
    fo_id: str
    mo_id: str
    follower_id: str
    vault_id: str
    symbol: str
    venue: str
    side: Literal["buy", "sell"]
    qty: DecimalString | None
    cap_applied: bool
    state: str
    skip_reason: str | None
    dispatch_attempts: int
    last_error: str | None
    broker_order_ref: str | None
    filled_qty: DecimalString | None
    avg_fill_price: DecimalString | None
    sizing: Any
    created_at: str | None
    updated_at: str | None


class OrderOut(Answer):
    mo_id: str
    id: str
    vault_id: str
    source: str
    symbol: str
    venue: str
    side: Literal["buy", "sell"]
    qty: DecimalString | None
    tif: str
    ref_price: DecimalString | None
    closes_position: bool
    state: str
    meta: Any
    created_at: str | None
    instrument_source: Literal["catalogue", "default"] | None


class OrderDetail(OrderOut):
    children: list[ChildOut]


class OrderLinks(Answer):
    children: str  # GET this for the children, a page at a time


class OrderCreated(OrderOut):
    created: bool  # false: the same order was already ingested (answered 200)
    children_total: int
    counts: dict[str, int]  # children per state
    links: OrderLinks


class OrderPage(Answer):
    data: list[OrderOut]
    next_cursor: str | None


class ChildPage(Answer):
    data: list[ChildOut]
    next_cursor: str | None


class NavOut(Answer):
    entity: Literal["vault", "follower"]
    entity_id: str
    nav: DecimalString
    as_of: str


class InstrumentOut(Answer):
    symbol: str
    venue: str
    lot_step: DecimalString
    min_qty: DecimalString
    min_notional: DecimalString
    fractional_step: DecimalString | None


def answer(model: type[BaseModel], status: int = 200, description: str = "OK"
           ) -> dict[int | str, dict[str, Any]]:
    """``responses=`` documenting ``model`` as the JSON answer of ``status``."""
    return {status: {"model": model, "description": description}}
