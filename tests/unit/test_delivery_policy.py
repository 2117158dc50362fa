import pytest

from vanta.domain.delivery import Outcome, classify, parse_retry_after, retry_delay

SCHEDULE = (1.0, 5.0, 15.0, 60.0)


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.ACK), (204, Outcome.ACK), (500, Outcome.RETRY), (503, Outcome.RETRY),
    (408, Outcome.RETRY), (425, Outcome.RETRY), (429, Outcome.RETRY), (None, Outcome.RETRY),
    (400, Outcome.FAILED), (401, Outcome.FAILED), (404, Outcome.FAILED), (410, Outcome.FAILED),
    (301, Outcome.FAILED),
])
def test_classify(status: int | None, outcome: Outcome) -> None:
    assert classify(status) is outcome


def test_schedule_then_give_up() -> None:
    delays = [retry_delay(n, SCHEDULE, jitter_fraction=0, unit_random=0.5) for n in range(1, 6)]
    assert delays == [1.0, 5.0, 15.0, 60.0, None]


def test_jitter_stays_within_bounds() -> None:
    lo = retry_delay(2, SCHEDULE, jitter_fraction=0.2, unit_random=0.0)
    hi = retry_delay(2, SCHEDULE, jitter_fraction=0.2, unit_random=1.0)
    assert lo == pytest.approx(4.0) and hi == pytest.approx(6.0)


def test_retry_after_honoured_but_bounded() -> None:
    assert retry_delay(1, SCHEDULE, jitter_fraction=0, unit_random=0.5, retry_after=30) == 30
    assert retry_delay(1, SCHEDULE, jitter_fraction=0, unit_random=0.5, retry_after=1e6) == 300
    assert parse_retry_after("12") == 12 and parse_retry_after("Wed, 21 Oct") is None
