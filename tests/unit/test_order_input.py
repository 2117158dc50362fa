from decimal import Decimal as D

import pytest

from vanta.application.manager_orders import parse_order_input
from vanta.domain.errors import ValidationFailed

BASE = {"id": "M-1", "vault_id": "V", "symbol": "aapl", "side": "buy", "qty": 10}


def test_valid_order_is_normalised() -> None:
    o = parse_order_input({**BASE, "qty": D("10.50"), "ref_price": "190.10"})
    assert o.symbol == "AAPL" and o.qty == D("10.5") and o.ref_price == D("190.1")
    assert o.venue == "default" and o.tif.value == "day"


def test_same_id_same_vault_gives_same_mo_id() -> None:
    assert parse_order_input(BASE).mo_id == parse_order_input(dict(BASE)).mo_id
    assert parse_order_input(BASE).mo_id != parse_order_input({**BASE, "vault_id": "W"}).mo_id


@pytest.mark.parametrize(("patch", "code", "field"), [
    ({"qty": 0}, "invalid_quantity", "qty"),
    ({"qty": -5}, "invalid_quantity", "qty"),
    ({"qty": "ten"}, "invalid_quantity", "qty"),
    ({"qty": True}, "invalid_quantity", "qty"),
    ({"qty": "NaN"}, "invalid_quantity", "qty"),
    ({"qty": "Infinity"}, "invalid_quantity", "qty"),
    ({"qty": 10**30}, "quantity_out_of_range", "qty"),
    ({"qty": "1e400"}, "quantity_out_of_range", "qty"),
    ({"qty": "0.0000000000001"}, "invalid_quantity", "qty"),
    ({"side": "hold"}, "invalid_side", "side"),
    ({"side": 1}, "invalid_side", "side"),
    ({"symbol": ""}, "invalid_symbol", "symbol"),
    ({"symbol": "A" * 40}, "invalid_symbol", "symbol"),
    ({"tif": "forever"}, "invalid_tif", "tif"),
    ({"ref_price": -1}, "invalid_price", "ref_price"),
    ({"ref_price": "abc"}, "invalid_price", "ref_price"),
    ({"quantity": 5}, "unknown_field", "quantity"),
    ({"closes_position": "yes"}, "invalid_boolean", "closes_position"),
    ({"id": ""}, "invalid_order_id", "id"),
])
def test_bad_input_has_stable_code_and_field(patch: dict, code: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_order_input({**BASE, **patch})
    assert e.value.code == code
    assert e.value.field == field


def test_missing_fields() -> None:
    for name in ("vault_id", "symbol", "side", "qty"):
        raw = {k: v for k, v in BASE.items() if k != name}
        with pytest.raises(ValidationFailed) as e:
            parse_order_input(raw)
        assert e.value.code == "missing_field" and e.value.field == name


def test_non_object_rejected() -> None:
    with pytest.raises(ValidationFailed) as e:
        parse_order_input([1, 2])
    assert e.value.code == "invalid_order"
