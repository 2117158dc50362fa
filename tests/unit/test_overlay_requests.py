from datetime import timedelta
from decimal import Decimal as D

import pytest

from vanta.domain.errors import ValidationFailed
from vanta.domain.followers import FollowerMode, parse_mode, parse_protections
from vanta.domain.overlays import OverlayKind, parse_overlay_request


def test_flip_defaults_and_bounds() -> None:
    r = parse_overlay_request({"flip": {"amplify": "0.35"}, "persona": "Apollo"})
    assert r["kind"] is OverlayKind.FLIP and r["amplify"] == D("0.35")
    assert r["ttl"] == timedelta(minutes=30) and r["persona"] == "Apollo"


@pytest.mark.parametrize(("body", "code"), [
    ({"flip": {"amplify": 5}}, "invalid_amplify"),
    ({"flip": {"amplify": "x"}}, "invalid_amplify"),
    ({"flip": {"amplify": 0.3, "ttl_minutes": 0}}, "invalid_ttl"),
    ({"flip": {"amplify": 0.3, "ttl_minutes": 61}}, "invalid_ttl"),
    ({"persona": "Ares", "ttl_minutes": "1e13"}, "invalid_ttl"),  # overflowed a timedelta
    ({"flip": {"ttl_minutes": 1e300}}, "invalid_ttl"),
    ({"persona": "Zeus"}, "unknown_persona"),
    ({}, "invalid_overlay"),
    ({"maintenance": {"enabled": "yes"}}, "invalid_overlay"),
    ({"maintenance": {"enabled": True}, "persona": "Ares"}, "invalid_overlay"),
    ({"colour": "red"}, "unknown_field"),
])
def test_bad_overlays(body: dict, code: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_overlay_request(body)
    assert e.value.code == code


def test_mode_rules() -> None:
    assert parse_mode(None, D(10)) is FollowerMode.CAPPED
    assert parse_mode(None, None) is FollowerMode.PROPORTIONAL
    with pytest.raises(ValidationFailed) as e:
        parse_mode("proportional", D(10))
    assert e.value.code == "cap_requires_capped_mode"


def test_protections_validation() -> None:
    p = parse_protections({"drawdown_stop_pct": 15, "deny_symbols": ["gme"],
                           "symbol_map": {"btc-usd": "xbtusd"}})
    assert p.drawdown_stop_pct == D(15) and p.deny_symbols == {"GME"}
    assert p.symbol_map == {"BTC-USD": "XBTUSD"}
    for bad in ({"drawdown_stop_pct": 0}, {"drawdown_stop_pct": 100}, {"max_order_usd": -1},
                {"allow_symbols": "AAPL"}, {"symbol_map": {"A": 1}}, {"stop": 1}):
        with pytest.raises(ValidationFailed):
            parse_protections(bad)
