"""A Replay Studio configuration as typed on the command line or the web page."""

from __future__ import annotations

import pytest

from vanta.application.studio import config_from_text
from vanta.domain.errors import ValidationFailed


def test_a_number_is_a_scale() -> None:
    assert config_from_text(" 0.25 ") == {"label": "scale 0.25", "scale": "0.25"}


def test_pairs_with_dotted_keys_nest() -> None:
    assert config_from_text("scale=0.5,protections.max_order_usd=500,fee_rate=0.2,"
                            "fractional=true") == {
        "scale": "0.5", "protections": {"max_order_usd": "500"}, "fees": {"rate": "0.2"},
        "fractional": True,
        "label": "scale=0.5,protections.max_order_usd=500,fee_rate=0.2,fractional=true"}


def test_json_is_the_api_body() -> None:
    assert config_from_text('{"label": "x", "mode": "capped", "max_pos_usd": "100"}') == \
        {"label": "x", "mode": "capped", "max_pos_usd": "100"}


@pytest.mark.parametrize("text", ["scale", "{not json", "[1, 2]", "fees=1,fees.rate=0.1"])
def test_what_cannot_be_read_is_refused(text: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        config_from_text(text)
    assert e.value.code == "invalid_config"
