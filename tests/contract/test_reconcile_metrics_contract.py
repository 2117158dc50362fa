"""The reconciliation metrics port on the recording fake and on Prometheus: the last drift
per vault, and the fix-ups and blocked fix-ups counted across runs."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from prometheus_client import REGISTRY

from tests.fakes.metrics import RecordingReconcileMetrics
from vanta.adapters.metrics import PrometheusReconcileMetrics, exposition
from vanta.application.ports.reconciliation import NoReconcileMetrics, ReconcileMetrics

Figures = tuple[dict[str, float], float, float]


def _prometheus() -> Figures:
    def v(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0
    return ({vault: v("reconcile_drift_bps", vault_id=vault) for vault in ("VX1", "VX2")},
            v("reconcile_fixups_total"), v("reconcile_blocked_fixups_total"))


def _subject(kind: str) -> tuple[ReconcileMetrics, Callable[[], Figures]]:
    if kind == "fake":
        m = RecordingReconcileMetrics()
        return m, lambda: ({k: m.drift_bps.get(k, 0.0) for k in ("VX1", "VX2")},
                           float(m.fixups), float(m.blocked))
    before = _prometheus()
    return PrometheusReconcileMetrics(), lambda: (
        _prometheus()[0], _prometheus()[1] - before[1], _prometheus()[2] - before[2])


@pytest.mark.parametrize("kind", ["fake", "prometheus"])
def test_runs_set_the_drift_and_count_fixups(kind: str) -> None:
    m, figures = _subject(kind)
    m.record_reconcile("VX1", 120.5, 2, 1)
    m.record_reconcile("VX2", 10.0, 0, 0)
    m.record_reconcile("VX1", 3.25, 1, 2)
    assert figures() == ({"VX1": 3.25, "VX2": 10.0}, 3.0, 3.0)
    if kind == "prometheus":
        assert b'reconcile_drift_bps{vault_id="VX1"} 3.25' in exposition()[0]


def test_the_default_records_nothing_and_accepts_every_call() -> None:
    NoReconcileMetrics().record_reconcile("V", 1.0, 1, 1)
