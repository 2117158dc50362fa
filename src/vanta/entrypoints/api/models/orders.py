"""The manager order body (``POST /v1/manager-orders``)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator, Field, StrictBool

from vanta.domain.money import MAX_DECIMAL_PLACES, MAX_PRICE, MAX_QTY
from vanta.entrypoints.api.models.base import (
    NOT_WS,
    RequestModel,
    decimal_type,
    non_negative_pattern,
    positive_pattern,
)


def lower(value: object) -> object:
    """Sides and time-in-force are matched case-insensitively, as they always were."""
    return value.lower() if isinstance(value, str) else value


Qty = decimal_type(gt=0, le=MAX_QTY, places=MAX_DECIMAL_PLACES,
                   pattern=positive_pattern(9, MAX_DECIMAL_PLACES))
Price = decimal_type(gt=0, le=MAX_PRICE, places=MAX_DECIMAL_PLACES,
                     pattern=positive_pattern(8, MAX_DECIMAL_PLACES))
Nav = decimal_type(ge=0, le=10**13, places=8, pattern=non_negative_pattern(13, 8),
                   description="net asset value in USD, at most 8 decimals")
Side = Annotated[Literal["buy", "sell"], BeforeValidator(lower)]
Tif = Annotated[Literal["day", "gtc", "ioc", "fok"], BeforeValidator(lower)]
SYMBOL = r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,31}$"
# no white space at either end (the id is compared as given)
ORDER_ID = rf"^{NOT_WS}([^\n\r\u2028\u2029]*{NOT_WS})?$"
VENUE = r"^[A-Za-z0-9_\-]{1,32}$"


class OrderIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {
        "id": "invalid_order_id", "vault_id": "missing_field", "symbol": "invalid_symbol",
        "venue": "invalid_venue", "side": "invalid_side", "qty": "invalid_quantity",
        "qty:less_than_equal": "quantity_out_of_range", "tif": "invalid_tif",
        "time_in_force": "invalid_tif", "ref_price": "invalid_price",
        "closes_position": "invalid_boolean", "manager_nav": "invalid_nav",
        "reason_vector": "invalid_order", "conviction": "invalid_order",
        "provenance": "invalid_order", "dag_id": "invalid_order", "meta": "invalid_order"}
    body_code: ClassVar[str] = "invalid_order"

    id: str | None = Field(None, min_length=1, max_length=128, pattern=ORDER_ID,
                           description="the source's order id; resubmitting the same id "
                           "never creates a second order (ids starting with sync: are "
                           "reserved)")
    vault_id: str = Field(min_length=1)
    symbol: str = Field(pattern=SYMBOL, examples=["AAPL"])
    venue: str | None = Field(None, pattern=VENUE, examples=["nasdaq"])
    side: Side
    qty: Qty
    tif: Tif | None = None
    time_in_force: Tif | None = Field(None, description="another name for tif")
    ref_price: Price | None = None
    closes_position: StrictBool = False
    manager_nav: Nav | None = None
    reason_vector: list[str] | None = None
    conviction: dict[str, Any] | None = None
    provenance: dict[str, Any] | None = None
    dag_id: str | None = None
    # free-form, any JSON value, as the server always took it (the depth limit of read_json
    # and the 16 KiB cap on the pass-through fields bound it)
    meta: Any = Field(None, description="any JSON value, passed through to followers")
