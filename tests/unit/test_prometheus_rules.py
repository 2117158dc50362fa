"""The Prometheus alerting rules in deploy/prometheus: valid (``promtool check rules``) and
firing when they should (``promtool test rules`` on alerts_test.yml). promtool comes from
Debian's ``prometheus`` package (scripts/test.sh installs it when it can); without it these
skip, and fail under CI=true."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus"


def _promtool() -> str:
    exe = shutil.which("promtool")
    if exe is None:
        msg = "promtool not found (apt-get install prometheus)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_promtool(), *args], cwd=RULES, capture_output=True, text=True,
                          timeout=60, check=False)


def test_the_alerting_rules_are_valid() -> None:
    done = _run("check", "rules", "alerts.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_the_alerting_rules_fire_as_their_unit_tests_expect() -> None:
    done = _run("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def _exported_series() -> set[str]:
    """The sample names this process's metrics expose (counters with ``_total``, histograms
    with ``_bucket``, ...), from the Prometheus adapter's own definitions."""
    from prometheus_client import REGISTRY

    import vanta.adapters.metrics  # noqa: F401  (defines the metrics in the registry)
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    return {fam.name + sfx for fam in REGISTRY.collect()
            for sfx in suffixes.get(fam.type, ("",))}


def test_every_metric_a_rule_reads_is_one_the_platform_exports() -> None:
    doc = yaml.safe_load((RULES / "alerts.yml").read_text())
    exprs = " ".join(r["expr"] for g in doc["groups"] for r in g["rules"])
    used = set(re.findall(r"\b(mirror_[a-z_]+|webhook_[a-z_]+|broker_[a-z_]+)\b", exprs))
    assert {"mirror_dispatch_latency_ms_bucket", "mirror_error_rate",
            "broker_submit_success_rate", "webhook_retry_count_total",
            "mirror_dispatch_dead_letters_total"} <= used
    assert used - _exported_series() == set(), "a rule reads a metric nobody exports"
