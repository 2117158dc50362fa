from datetime import UTC, datetime, timedelta

import pytest

from vanta.domain.errors import InvalidTransition, ValidationFailed
from vanta.domain.subscriptions import (
    DEFAULT_GRACE,
    SUBSCRIPTION_TABLE,
    Access,
    effective_status,
    grace_ends_at,
    parse_status,
    transition,
)
from vanta.domain.subscriptions import SubscriptionStatus as S

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)

ALLOWED = [
    (S.INCOMPLETE, S.ACTIVE), (S.INCOMPLETE, S.TRIALING), (S.INCOMPLETE, S.CANCELED),
    (S.TRIALING, S.ACTIVE), (S.TRIALING, S.PAST_DUE), (S.TRIALING, S.CANCELED),
    (S.ACTIVE, S.PAST_DUE), (S.ACTIVE, S.CANCELED),
    (S.PAST_DUE, S.ACTIVE), (S.PAST_DUE, S.UNPAID), (S.PAST_DUE, S.CANCELED),
    (S.UNPAID, S.ACTIVE), (S.UNPAID, S.CANCELED),
]


@pytest.mark.parametrize(("src", "dst"), ALLOWED)
def test_allowed_moves(src: S, dst: S) -> None:
    assert SUBSCRIPTION_TABLE.check(src, dst) is dst
    assert transition(src, dst) is dst


@pytest.mark.parametrize(("src", "dst"), [
    (src, dst) for src in S for dst in S if (src, dst) not in ALLOWED
])
def test_every_other_move_is_illegal(src: S, dst: S) -> None:
    with pytest.raises(InvalidTransition):
        transition(src, dst)


def test_canceled_is_the_only_terminal_state_and_every_state_is_in_the_table() -> None:
    assert [s for s in S if SUBSCRIPTION_TABLE.is_terminal(s)] == [S.CANCELED]
    assert set(SUBSCRIPTION_TABLE.states()) == set(S)


def test_every_state_can_reach_canceled() -> None:
    assert all(SUBSCRIPTION_TABLE.can(s, S.CANCELED) for s in S if s is not S.CANCELED)


def test_parse_status() -> None:
    assert parse_status("past_due") is S.PAST_DUE
    for bad in ("PastDue", "", None, 3):
        with pytest.raises(ValidationFailed) as e:
            parse_status(bad)
        assert e.value.code == "invalid_subscription_status"


@pytest.mark.parametrize(("status", "access"), [
    (S.TRIALING, Access.ENTITLED), (S.ACTIVE, Access.ENTITLED),
    (S.INCOMPLETE, Access.LAPSED), (S.UNPAID, Access.LAPSED), (S.CANCELED, Access.LAPSED),
])
def test_status_without_grace(status: S, access: Access) -> None:
    assert effective_status(status, None, T0) is access
    # a stale past_due_since on a non-past_due status changes nothing
    assert effective_status(status, T0 - timedelta(days=30), T0) is access


def test_past_due_keeps_features_during_grace_and_drops_them_after() -> None:
    since = T0
    assert timedelta(days=3) == DEFAULT_GRACE
    assert effective_status(S.PAST_DUE, since, since) is Access.GRACE
    assert effective_status(S.PAST_DUE, since, since + timedelta(days=2, hours=23)) \
        is Access.GRACE
    end = grace_ends_at(since)
    assert effective_status(S.PAST_DUE, since, end - timedelta(microseconds=1)) is Access.GRACE
    assert effective_status(S.PAST_DUE, since, end) is Access.LAPSED  # half-open interval
    assert effective_status(S.PAST_DUE, since, end + timedelta(days=10)) is Access.LAPSED


def test_custom_and_zero_grace() -> None:
    since = T0
    week = timedelta(days=7)
    assert effective_status(S.PAST_DUE, since, since + timedelta(days=5), week) is Access.GRACE
    assert effective_status(S.PAST_DUE, since, since, timedelta(0)) is Access.LAPSED
    with pytest.raises(ValueError):
        effective_status(S.PAST_DUE, since, since, timedelta(days=-1))


def test_clock_before_past_due_since_counts_as_grace() -> None:
    assert effective_status(S.PAST_DUE, T0, T0 - timedelta(seconds=5)) is Access.GRACE


def test_past_due_without_since_is_a_data_error() -> None:
    with pytest.raises(ValueError):
        effective_status(S.PAST_DUE, None, T0)


def test_string_status_and_string_results() -> None:
    assert effective_status("active", None, T0) == "entitled"
    assert effective_status("past_due", T0, T0 + timedelta(days=1)) == "grace"
    assert effective_status("canceled", None, T0) == "lapsed"
    with pytest.raises(ValidationFailed):
        effective_status("paused", None, T0)


def test_access_grants_features() -> None:
    assert Access.ENTITLED.grants_features
    assert Access.GRACE.grants_features
    assert not Access.LAPSED.grants_features
