"""Prometheus metrics. The spec's dotted names map to Prometheus names as follows:

* ``mirror.dispatch.latency_ms`` → histogram ``mirror_dispatch_latency_ms``: manager order
  accepted → child acknowledged (P50/P95 via ``histogram_quantile``); per-attempt HTTP time is
  ``webhook_attempt_latency_ms``.
* ``mirror.error.rate`` → ``mirror_dispatch_attempts_total{outcome}``; the ratio is
  ``rate(...{outcome!="ack"}) / rate(...)``, and gauge ``mirror_error_rate`` holds it since start.
* ``broker.submit.success_rate`` → ``broker_submit_total{outcome}`` and gauge
  ``broker_submit_success_rate``.
* ``webhook.retry.count`` → counter ``webhook_retries_total``.

Labels carry no tenant, vault or follower ids: the endpoint is unauthenticated for scrapers.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

_MS_BUCKETS = (5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000, 10000, 30000, 60000)

DISPATCH_LATENCY = Histogram("mirror_dispatch_latency_ms",
                             "Manager order accepted to child acknowledged, milliseconds",
                             buckets=_MS_BUCKETS)
ATTEMPT_LATENCY = Histogram("webhook_attempt_latency_ms", "One delivery attempt, milliseconds",
                            buckets=_MS_BUCKETS)
ATTEMPTS = Counter("mirror_dispatch_attempts", "Delivery attempts by outcome", ["outcome"])
ERROR_RATE = Gauge("mirror_error_rate", "Share of delivery attempts that were not acknowledged")
RETRIES = Counter("webhook_retries", "Delivery attempts scheduled for another try")
DEAD_LETTERS = Counter("mirror_dispatch_dead_letters", "Children parked in mirror_dispatch_dlx")
BROKER_SUBMITS = Counter("broker_submit", "Broker order submissions by outcome", ["outcome"])
BROKER_SUCCESS = Gauge("broker_submit_success_rate", "Share of broker submissions accepted")

RECONCILE_DRIFT = Gauge("reconcile_drift_bps",
                        "Largest follower drift of the vault's last reconciliation, bps of NAV",
                        ["vault_id"])
RECONCILE_FIXUPS = Counter("reconcile_fixups", "Fix-up orders dispatched by reconciliation")
RECONCILE_BLOCKED = Counter("reconcile_blocked_fixups",
                            "Fix-ups reconciliation could not send (with a recorded reason)")

_totals = {"attempts": 0, "errors": 0, "broker": 0, "broker_ok": 0}


def record_attempt(outcome: str, latency_ms: int) -> None:
    ATTEMPTS.labels(outcome=outcome).inc()
    ATTEMPT_LATENCY.observe(latency_ms)
    _totals["attempts"] += 1
    if outcome != "ack":
        _totals["errors"] += 1
    ERROR_RATE.set(_totals["errors"] / _totals["attempts"])
    if outcome == "retry":
        RETRIES.inc()
    if outcome == "dlq":
        DEAD_LETTERS.inc()


def record_ack(order_to_ack_ms: float) -> None:
    DISPATCH_LATENCY.observe(order_to_ack_ms)


def record_broker_submit(ok: bool) -> None:
    BROKER_SUBMITS.labels(outcome="accepted" if ok else "failed").inc()
    _totals["broker"] += 1
    _totals["broker_ok"] += int(ok)
    BROKER_SUCCESS.set(_totals["broker_ok"] / _totals["broker"])


def record_dead_letter() -> None:
    DEAD_LETTERS.inc()


class PrometheusMetrics:
    """The application's :class:`~vanta.application.ports.metrics.Metrics` port, recorded in
    this process's Prometheus registry (the module-level metrics above)."""

    def record_attempt(self, outcome: str, latency_ms: int) -> None:
        record_attempt(outcome, latency_ms)

    def record_ack(self, order_to_ack_ms: float) -> None:
        record_ack(order_to_ack_ms)

    def record_dead_letter(self) -> None:
        record_dead_letter()

    def record_broker_submit(self, ok: bool) -> None:
        record_broker_submit(ok)


class PrometheusReconcileMetrics:
    """The :class:`~vanta.application.ports.reconciliation.ReconcileMetrics` port."""

    def record_reconcile(self, vault_id: str, max_drift_bps: float, fixups: int,
                         blocked: int) -> None:
        RECONCILE_DRIFT.labels(vault_id=vault_id).set(max_drift_bps)
        RECONCILE_FIXUPS.inc(fixups)
        RECONCILE_BLOCKED.inc(blocked)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
