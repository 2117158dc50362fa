"""The cross-rail router on worked examples: fee model parsing, route costs, buffer top-ups,
sell proceeds, tie-breaks and every infeasibility reason."""

from decimal import Decimal as D

import pytest

from vanta.domain.errors import NotFound, ValidationFailed
from vanta.domain.routing import LegKind, RouteKind, RouteRequest, choose_route, pair_known
from vanta.domain.venues import (
    DEFAULT_FEE_MODELS,
    VenueFees,
    bps_of,
    known_venue,
    parse_fee_model,
)

BODY = {"maker_bps": "10", "taker_bps": "20", "spread_bps": "5", "conversion_bps": "8",
        "min_order_usd": "10", "latency_ms": 200,
        "pairs": ["BTC-USD", "btc-usdc", "USDC-USD"]}


def model(venue: str, taker: str, *, conv: str | None = "0", latency: int = 100,
          pairs: tuple[str, ...] = ("BTC-USD", "BTC-USDC", "USDC-USD"),
          min_order: str = "1") -> VenueFees:
    return VenueFees(venue, D(0), D(taker), D(0), None if conv is None else D(conv),
                     D(min_order), latency, frozenset(pairs), 3)


def req(**kw: object) -> RouteRequest:
    base: dict[str, object] = {"base": "BTC", "side": "buy", "qty": D("0.5"),
                               "price": D("40000"), "usd_balance": D("100000"),
                               "usdc_balance": D(0), "buffer": D(0),
                               "latency_budget_ms": 1000, "venues": ("a",)}
    base.update(kw)
    return RouteRequest(**base)  # type: ignore[arg-type]


def test_fee_model_parses_exactly_and_normalizes_pairs() -> None:
    m = parse_fee_model("kraken", BODY, version=4)
    assert (m.taker_bps, m.conversion_bps, m.min_order_usd, m.version) == (D(20), D(8), D(10), 4)
    assert m.pairs == {"BTC-USD", "BTC-USDC", "USDC-USD"}
    assert VenueFees.from_json(m.to_json()) == m


@pytest.mark.parametrize(("change", "field"), [
    ({"taker_bps": "-1"}, "taker_bps"), ({"maker_bps": "10001"}, "maker_bps"),
    ({"spread_bps": "0.00001"}, "spread_bps"), ({"latency_ms": -5}, "latency_ms"),
    ({"latency_ms": True}, "latency_ms"), ({"min_order_usd": "-1"}, "min_order_usd"),
    ({"pairs": []}, "pairs"), ({"pairs": ["BTCUSD"]}, "pairs"), ({"fee": 1}, "fee"),
])
def test_fee_model_refuses_bad_fields(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_fee_model("paper", {**BODY, **change})
    assert e.value.field == field


def test_unknown_venue_is_not_found() -> None:
    assert known_venue(" Kraken ") == "kraken"
    with pytest.raises(NotFound) as e:
        known_venue("mtgox")
    assert e.value.code == "unknown_venue"


def test_bps_is_exact() -> None:
    assert bps_of(D("0.3"), D("7")) == D("0.00021")
    assert bps_of(D(0), D(5)) == 0


def test_direct_buy_costs_taker_and_spread() -> None:
    d = choose_route(req(venues=("paper",)), DEFAULT_FEE_MODELS)
    assert d.chosen is not None and d.chosen.cost_usd == 0  # the paper venue charges nothing
    m = {"a": VenueFees("a", D(0), D(20), D(5), None, D(1), 10, frozenset({"BTC-USD"}), 1)}
    d = choose_route(req(), m)
    assert d.chosen is not None
    assert (d.chosen.kind, d.chosen.cost_usd, d.chosen.usd_spent) == (
        RouteKind.DIRECT, D(50), D(20050))  # 20,000 × 25 bp
    assert [r.reason for r in d.rejected] == ["pair_not_traded"]


def test_usdc_on_hand_pays_without_a_conversion() -> None:
    m = {"a": model("a", "20", pairs=("BTC-USDC", "USDC-USD"))}
    d = choose_route(req(usdc_balance=D(30000), buffer=D(5000)), m)
    assert d.chosen is not None and d.chosen.kind is RouteKind.VIA_USDC
    assert [leg.kind for leg in d.chosen.legs] == [LegKind.TRADE]
    assert (d.chosen.usd_spent, d.chosen.usdc_after) == (0, D(9960))


def test_shortfall_tops_up_to_the_buffer_in_one_leg() -> None:
    m = {"a": model("a", "20", conv="10", pairs=("BTC-USDC", "USDC-USD"))}
    d = choose_route(req(usdc_balance=D(1000), buffer=D(5000)), m)
    c = d.chosen
    assert c is not None
    convert, trade = c.legs
    assert (convert.kind, convert.pair, convert.amount) == (LegKind.CONVERT, "USDC-USD",
                                                            D(24040))
    assert (trade.after, trade.amount, trade.pair) == (0, D("0.5"), "BTC-USDC")
    assert c.cost_usd == D("64.04") and c.usd_spent == D("24064.04")
    assert c.usdc_after == D(5000) and c.latency_ms == 200


def test_conversion_never_below_the_venue_minimum() -> None:
    m = {"a": model("a", "0", pairs=("BTC-USDC", "USDC-USD"), min_order="25")}
    d = choose_route(req(qty=D("0.001"), usdc_balance=D(30)), m)  # needs 40, has 30
    assert d.chosen is not None and d.chosen.legs[0].amount == D(25)
    assert d.chosen.reason is None and d.chosen.usdc_after == D(15)


def test_infeasible_routes_carry_their_reason() -> None:
    m = {"a": model("a", "20", latency=100), "slow": model("slow", "0", latency=900),
         "noconv": model("noconv", "0", conv=None, pairs=("BTC-USDC",))}
    d = choose_route(req(venues=("a", "slow", "noconv", "ghost"), buffer=D(1),
                         latency_budget_ms=150), m)
    assert d.chosen is not None and (d.chosen.venue, d.chosen.kind) == ("a", RouteKind.DIRECT)
    reasons = {(r.venue, r.kind.value): r.reason for r in d.rejected}
    assert reasons == {("a", "via_usdc"): "over_latency_budget",
                       ("slow", "direct"): "over_latency_budget",
                       ("slow", "via_usdc"): "over_latency_budget",
                       ("noconv", "direct"): "pair_not_traded",
                       ("noconv", "via_usdc"): "venue_cannot_convert",
                       ("ghost", "direct"): "no_fee_model",
                       ("ghost", "via_usdc"): "no_fee_model"}


def test_no_feasible_route_when_usd_or_size_falls_short() -> None:
    m = {"a": model("a", "20", min_order="50")}
    d = choose_route(req(usd_balance=D(100)), m)
    assert d.chosen is None and d.reason == "no_feasible_route"
    assert {r.reason for r in d.rejected} == {"insufficient_usd"}
    d = choose_route(req(qty=D("0.001")), m)  # 40 USD of BTC
    assert {r.reason for r in d.rejected} == {"below_min_order"}


def test_a_cheaper_stablecoin_venue_beats_expensive_direct_spot() -> None:
    m = {"spot": model("spot", "60", pairs=("BTC-USD",)),
         "cex": model("cex", "10", conv="5", pairs=("BTC-USDC", "USDC-USD"))}
    d = choose_route(req(venues=("spot", "cex")), m)
    assert d.chosen is not None and (d.chosen.venue, d.chosen.kind) == (
        "cex", RouteKind.VIA_USDC)
    assert d.chosen.cost_usd == D(20) + D("10.01")  # trade fee + conversion of 20,020
    spot = next(r for r in d.rejected if r.venue == "spot" and r.kind is RouteKind.DIRECT)
    assert spot.cost_usd == D(120) and spot.feasible


def test_sell_keeps_proceeds_in_usdc_up_to_the_buffer() -> None:
    m = {"a": model("a", "0", conv="10", pairs=("BTC-USDC", "USDC-USD"))}
    d = choose_route(req(side="sell", usdc_balance=D(1000), buffer=D(5000)), m)
    c = d.chosen
    assert c is not None
    trade, back = c.legs
    assert (trade.side, back.kind, back.side, back.amount, back.after) == (
        "sell", LegKind.CONVERT, "sell", D(16000), 0)
    assert c.usdc_after == D(5000) and c.cost_usd == D(16)
    # proceeds below the buffer stay in USDC: no conversion leg
    d = choose_route(req(side="sell", qty=D("0.01"), buffer=D(5000)), m)
    assert d.chosen is not None and len(d.chosen.legs) == 1
    assert d.chosen.usdc_after == D(400)


@pytest.mark.parametrize(("field", "value", "code"), [
    ("buffer", D(-1), "invalid_buffer"), ("qty", D(0), "invalid_number"),
    ("side", "hold", "invalid_side"), ("usd_balance", D(-1), "invalid_balance"),
    ("latency_budget_ms", -1, "invalid_latency_budget")])
def test_bad_requests_are_refused(field: str, value: object, code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        req(**{field: value})
    assert e.value.code == code


def test_pair_known() -> None:
    models = list(DEFAULT_FEE_MODELS.values())
    assert pair_known("BTC", models) and not pair_known("DOGE", models)


def test_tie_goes_to_direct_then_venue_name() -> None:
    m = {"b": model("b", "20"), "a": model("a", "20")}
    d = choose_route(req(venues=("b", "a"), usdc_balance=D(30000)), m)
    assert d.chosen is not None
    assert (d.chosen.venue, d.chosen.kind) == ("a", RouteKind.DIRECT)
    assert [(r.venue, r.kind) for r in d.rejected] == [
        ("b", RouteKind.DIRECT), ("a", RouteKind.VIA_USDC), ("b", RouteKind.VIA_USDC)]
