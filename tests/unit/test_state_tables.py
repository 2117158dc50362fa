import pytest

from vanta.domain.errors import InvalidTransition
from vanta.domain.orders import (
    CHILD_ORDER_TABLE,
    MANAGER_ORDER_TABLE,
)
from vanta.domain.orders import (
    ChildOrderState as C,
)
from vanta.domain.orders import (
    ManagerOrderState as M,
)


@pytest.mark.parametrize(("src", "dst"), [
    (C.PENDING, C.SENT), (C.SENT, C.ACK), (C.SENT, C.RETRY), (C.RETRY, C.SENT),
    (C.SENT, C.FAILED), (C.SENT, C.DLQ), (C.ACK, C.CONFIRMED), (C.DLQ, C.PENDING),
])
def test_child_allowed_moves(src: C, dst: C) -> None:
    assert CHILD_ORDER_TABLE.check(src, dst) is dst


@pytest.mark.parametrize(("src", "dst"), [
    (C.PENDING, C.ACK), (C.ACK, C.SENT), (C.FAILED, C.SENT), (C.SKIPPED, C.SENT),
    (C.SHADOW, C.SENT), (C.CONFIRMED, C.ACK), (C.RETRY, C.ACK), (C.PENDING, C.CONFIRMED),
])
def test_child_illegal_moves_raise(src: C, dst: C) -> None:
    with pytest.raises(InvalidTransition):
        CHILD_ORDER_TABLE.check(src, dst)


def test_skipped_shadow_failed_confirmed_are_terminal() -> None:
    for s in (C.SKIPPED, C.SHADOW, C.FAILED, C.CONFIRMED):
        assert CHILD_ORDER_TABLE.is_terminal(s)


def test_manager_order_table() -> None:
    assert MANAGER_ORDER_TABLE.can(M.RECEIVED, M.EXPANDED)
    assert MANAGER_ORDER_TABLE.can(M.EXPANDED, M.COMPLETED)
    assert MANAGER_ORDER_TABLE.can(M.COMPLETED, M.EXPANDED)  # a redelivery reopens it
    with pytest.raises(InvalidTransition):
        MANAGER_ORDER_TABLE.check(M.COMPLETED, M.REJECTED)
    with pytest.raises(InvalidTransition):
        MANAGER_ORDER_TABLE.check(M.REJECTED, M.EXPANDED)


def test_child_ids_are_uuid5_of_order_and_follower() -> None:
    import uuid

    from vanta.domain.ids import VANTA_NAMESPACE, child_order_id, child_order_ids

    for mo, f in [("m", "f"), ("x" * 50, "ü"), ("6ac3daee-b9be-5b80", "84579595")]:
        expected = str(uuid.uuid5(VANTA_NAMESPACE, f"fo:{mo}:{f}"))
        assert child_order_id(mo, f) == expected == child_order_ids(mo)(f)
    assert child_order_id("m", "f1") != child_order_id("m", "f2")
