"""The metrics contract (:class:`~vanta.application.ports.metrics.Metrics`), run on the
recording fake (``tests/fakes/metrics.py``) and the Prometheus adapter.

The port only writes, so each implementation offers a read-out of the same figures: the fake
from its recorded calls, Prometheus from its registry (as differences from a reading taken
when the case starts, since the registry is process-wide). The no-op default takes part in
the one case it can: every call is accepted.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import pytest
from prometheus_client import REGISTRY

from tests.fakes.metrics import RecordingMetrics
from vanta.adapters.metrics import PrometheusMetrics, exposition
from vanta.application.ports.metrics import NO_METRICS, Metrics

OUTCOMES = ("ack", "retry", "dlq", "failed")


@dataclass(frozen=True)
class Figures:
    attempts: dict[str, float]  # by outcome
    attempt_latency: tuple[float, float]  # (count, sum of milliseconds)
    acks: tuple[float, float]  # order-to-ack latency: (count, sum of milliseconds)
    retries: float
    dead_letters: float
    broker: dict[bool, float]  # submissions by success

    def minus(self, before: Figures) -> Figures:
        def sub(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
            return (a[0] - b[0], a[1] - b[1])
        return Figures({k: v - before.attempts.get(k, 0) for k, v in self.attempts.items()},
                       sub(self.attempt_latency, before.attempt_latency),
                       sub(self.acks, before.acks), self.retries - before.retries,
                       self.dead_letters - before.dead_letters,
                       {k: v - before.broker.get(k, 0) for k, v in self.broker.items()})


def _fake_figures(m: RecordingMetrics) -> Figures:
    lat, acks = m.attempt_latencies_ms, m.ack_latencies_ms
    counts: Counter[str] = m.attempts
    return Figures({o: float(counts[o]) for o in OUTCOMES}, (len(lat), sum(lat)),
                   (len(acks), sum(acks)), m.retries, m.dead_letters,
                   {ok: float(m.broker_submits[ok]) for ok in (True, False)})


def _prometheus_figures() -> Figures:
    def v(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0
    return Figures(
        {o: v("mirror_dispatch_attempts_total", outcome=o) for o in OUTCOMES},
        (v("webhook_attempt_latency_ms_count"), v("webhook_attempt_latency_ms_sum")),
        (v("mirror_dispatch_latency_ms_count"), v("mirror_dispatch_latency_ms_sum")),
        v("webhook_retries_total"), v("mirror_dispatch_dead_letters_total"),
        {True: v("broker_submit_total", outcome="accepted"),
         False: v("broker_submit_total", outcome="failed")})


@dataclass
class Impl:
    metrics: Metrics
    read: Callable[[], Figures]
    start: Figures

    def recorded(self) -> Figures:
        return self.read().minus(self.start)


@pytest.fixture(params=["fake", "prometheus"])
def impl(request: pytest.FixtureRequest) -> Impl:
    if request.param == "fake":
        fake = RecordingMetrics()
        return Impl(fake, lambda: _fake_figures(fake), _fake_figures(fake))
    return Impl(PrometheusMetrics(), _prometheus_figures, _prometheus_figures())


@pytest.mark.parametrize("metrics", [RecordingMetrics(), PrometheusMetrics(), NO_METRICS],
                         ids=["fake", "prometheus", "none"])
def test_every_call_is_accepted(metrics: Metrics) -> None:
    for outcome in (*OUTCOMES, "deferred"):
        metrics.record_attempt(outcome, 0)
    metrics.record_ack(0.0)
    metrics.record_dead_letter()
    metrics.record_broker_submit(True)
    metrics.record_broker_submit(False)


def test_attempts_count_by_outcome_with_their_latency(impl: Impl) -> None:
    for outcome, ms in (("ack", 120), ("retry", 30), ("retry", 40), ("dlq", 10),
                        ("failed", 5)):
        impl.metrics.record_attempt(outcome, ms)
    got = impl.recorded()
    assert got.attempts == {"ack": 1, "retry": 2, "dlq": 1, "failed": 1}
    assert got.attempt_latency == (5, 205)
    assert got.retries == 2  # a retry attempt is a scheduled retry
    assert got.dead_letters == 1  # a dlq attempt parks the child
    assert got.acks == (0, 0) and got.broker == {True: 0, False: 0}


def test_a_dead_letter_without_an_attempt(impl: Impl) -> None:
    impl.metrics.record_dead_letter()
    got = impl.recorded()
    assert got.dead_letters == 1
    assert got.attempts == dict.fromkeys(OUTCOMES, 0) and got.attempt_latency == (0, 0)


def test_order_to_ack_latency(impl: Impl) -> None:
    impl.metrics.record_ack(1500.5)
    impl.metrics.record_ack(20.0)
    got = impl.recorded()
    assert got.acks == (2, pytest.approx(1520.5))
    assert got.attempts == dict.fromkeys(OUTCOMES, 0)


def test_broker_submissions_by_success(impl: Impl) -> None:
    for ok in (True, True, False):
        impl.metrics.record_broker_submit(ok)
    assert impl.recorded().broker == {True: 2, False: 1}


def test_prometheus_exposes_the_spec_names() -> None:
    body, content_type = exposition()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in ("mirror_dispatch_latency_ms", "mirror_dispatch_attempts_total",
                 "mirror_error_rate", "webhook_retries_total", "broker_submit_success_rate",
                 "webhook_retry_count"):
        assert name in text


def _rates_reader(metrics: Metrics) -> Callable[[str, str], tuple[float | None, float]]:
    """(error rate, retries) of one vault and follower, as the implementation exposes them."""
    if isinstance(metrics, RecordingMetrics):
        return lambda v, f: (metrics.error_rate(v, f), float(metrics.retries_of(v, f)))

    def prom(v: str, f: str) -> tuple[float | None, float]:
        labels = {"vault_id": v, "follower_id": f}
        return (REGISTRY.get_sample_value("mirror_error_rate", labels),
                REGISTRY.get_sample_value("webhook_retry_count_total", labels) or 0.0)
    return prom


def test_error_rate_and_retries_per_vault_and_follower(impl: Impl) -> None:
    # fresh ids: the Prometheus registry lives as long as the process
    v, f1, f2 = (f"{p}-{uuid.uuid4().hex[:8]}" for p in ("V", "F1", "F2"))
    for outcome, f in (("ack", f1), ("retry", f1), ("ack", f2), ("ack", f2)):
        impl.metrics.record_attempt(outcome, 3, v, f)
    read = _rates_reader(impl.metrics)
    assert read(v, f1) == (0.5, 1.0)
    assert read(v, f2) == (0.0, 0.0)
    assert read(v, "")[0] == 0.25  # the vault as a whole


def test_prometheus_without_id_labels_keeps_only_the_totals() -> None:
    v = f"V-{uuid.uuid4().hex[:8]}"
    PrometheusMetrics(id_labels=False).record_attempt("retry", 1, v, "f")
    assert REGISTRY.get_sample_value("mirror_error_rate",
                                     {"vault_id": v, "follower_id": ""}) is None
    assert REGISTRY.get_sample_value("mirror_error_rate",
                                     {"vault_id": "", "follower_id": ""}) is not None
