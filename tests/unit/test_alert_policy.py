"""De-duplication and rate limits of operator alerts (vanta.domain.alerts), on a fake clock:
the caller passes the time and the alerts already sent."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.fakes.clock import T0, FakeClock
from vanta.domain.alerts import AlertPolicy, SentAlert, Verdict, decide, summary

POLICY = AlertPolicy(dedupe_window=timedelta(minutes=15), window=timedelta(hours=1),
                     per_kind=3, per_subject=2)


class Sent:
    """A tenant's send history, fed only with what ``decide`` let through."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.rows = clock, list[SentAlert]()

    def offer(self, kind: str, subject: str) -> Verdict:
        v = decide(kind, subject, self.clock(), self.rows, POLICY)
        if v is Verdict.SEND:
            self.rows.append(SentAlert(kind, subject, self.clock()))
        return v


def test_the_same_kind_and_subject_is_sent_once_per_dedupe_window() -> None:
    clock = FakeClock()
    s = Sent(clock)
    assert s.offer("dead_letter", "f1") is Verdict.SEND
    clock.advance(14 * 60 + 59)
    assert s.offer("dead_letter", "f1") is Verdict.DUPLICATE
    assert s.offer("dead_letter", "f2") is Verdict.SEND, "another subject is not a duplicate"
    assert s.offer("endpoint_disabled", "f1") is Verdict.SEND, "another kind neither"
    clock.advance(1)
    assert s.offer("dead_letter", "f1") is Verdict.SEND, "the window ended"


def test_one_subject_is_limited_within_the_window() -> None:
    clock = FakeClock()
    s = Sent(clock)
    assert s.offer("dead_letter", "f1") is Verdict.SEND
    clock.advance(15 * 60)
    assert s.offer("dead_letter", "f1") is Verdict.SEND
    clock.advance(15 * 60)
    assert s.offer("dead_letter", "f1") is Verdict.RATE_LIMITED  # per_subject = 2 an hour
    clock.advance(30 * 60)  # the first one left the hour
    assert s.offer("dead_letter", "f1") is Verdict.SEND


def test_one_kind_is_limited_within_the_window_across_subjects() -> None:
    clock = FakeClock()
    s = Sent(clock)
    assert [s.offer("dead_letter", f"f{i}") for i in range(4)] == [
        Verdict.SEND, Verdict.SEND, Verdict.SEND, Verdict.RATE_LIMITED]
    assert s.offer("broker_lost_order", "f9") is Verdict.SEND, "other kinds have their own"
    clock.advance(3600)
    assert s.offer("dead_letter", "f5") is Verdict.SEND


def test_a_test_alert_is_never_held_back() -> None:
    clock = FakeClock()
    s = Sent(clock)
    assert [s.offer("test", "c1") for _ in range(5)] == [Verdict.SEND] * 5


def test_an_old_history_does_not_count() -> None:
    old = [SentAlert("dead_letter", "f1", T0 - timedelta(hours=2))] * 10
    assert decide("dead_letter", "f1", T0, old, POLICY) is Verdict.SEND


@pytest.mark.parametrize("bad", [dict(per_kind=0), dict(per_subject=0),
                                 dict(window=timedelta(0)),
                                 dict(dedupe_window=timedelta(seconds=-1))])
def test_a_policy_without_room_is_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AlertPolicy(**bad)  # type: ignore[arg-type]


def test_the_summary_names_the_kind_the_subject_and_what_was_held_back() -> None:
    assert summary("dead_letter", "f1") == \
        "[vanta] a child order was dead-lettered after its last retry: f1"
    assert summary("endpoint_disabled", "f1", 4).endswith("f1 (+4 similar held back)")
    assert summary("something_new", "x") == "[vanta] something_new: x"
