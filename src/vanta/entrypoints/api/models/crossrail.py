"""Request bodies of the cross-rail routes: venue fee models, stablecoin buffers, quotes."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from vanta.entrypoints.api.models.base import (
    RequestModel,
    WholeNumber,
    decimal_type,
    non_negative_pattern,
    positive_pattern,
)


def _up_to(digits: int, places: int) -> str:
    """0 to 10**digits inclusive, at most ``places`` decimals (the bound written exactly)."""
    return (rf"^([0-9]{{1,{digits}}}(\.[0-9]{{1,{places}}})?|1{'0' * digits}"
            rf"(\.0{{1,{places}}})?)$")


Bps = decimal_type(ge=0, le=10_000, places=4, pattern=_up_to(4, 4),
                   description="basis points, 0 to 10000")
MinOrder = decimal_type(ge=0, le=1_000_000, places=12, pattern=_up_to(6, 12), description="USD")
Pair = Annotated[str, Field(pattern=r"^[A-Za-z0-9]{2,10}-[A-Za-z0-9]{2,10}$",
                            description="BASE-QUOTE, e.g. BTC-USDC")]
Money = decimal_type(ge=0, le=10**17, places=12, pattern=non_negative_pattern(17, 12))
Positive = decimal_type(gt=0, le=10**9, places=12, pattern=positive_pattern(9, 12))
Price = decimal_type(gt=0, le=10**8, places=12, pattern=positive_pattern(8, 12))


class FeeModelIn(RequestModel):
    """A venue's whole fee model; it replaces the current one as the next version."""

    codes: ClassVar[dict[str, str]] = {"*": "invalid_fee_model"}

    maker_bps: Bps
    taker_bps: Bps
    spread_bps: Bps = Field(description="estimated half spread paid crossing the book")
    conversion_bps: Bps | None = Field(None, description="USD to USDC; null: the venue "
                                       "does not convert")
    min_order_usd: MinOrder
    latency_ms: WholeNumber = Field(ge=0, le=3_600_000, description="milliseconds")
    pairs: list[Pair] = Field(min_length=1, max_length=200)


BufferAmount = decimal_type(ge=0, le=1_000_000_000, places=6, pattern=_up_to(9, 6),
                            description="USDC to keep; never negative")


class BufferIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {"*": "invalid_buffer"}

    amount: BufferAmount


class QuoteIn(RequestModel):
    codes: ClassVar[dict[str, str]] = {
        "symbol": "unknown_pair", "side": "invalid_side", "venues": "unknown_venue",
        "latency_budget_ms": "invalid_latency_budget", "*": "invalid_number"}

    symbol: str = Field(min_length=1, max_length=21, description="BTC, BTC-USD or BTC-USDC")
    side: Literal["buy", "sell"]
    qty: Positive
    price: Price = Field(description="reference price in USD")
    usd_balance: Money
    usdc_balance: Money = Field(None, description="default 0")  # type: ignore[assignment]
    latency_budget_ms: WholeNumber = Field(None, ge=0, le=3_600_000,  # type: ignore[assignment]
                                           description="milliseconds, default 2000")
    venues: list[Annotated[str, Field(max_length=32)]] = Field(
        None, min_length=1, max_length=10,  # type: ignore[assignment]
        description="default: every venue the follower is linked to")
