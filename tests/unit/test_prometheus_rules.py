"""The Prometheus alerting rules in deploy/prometheus: valid (``promtool check rules``) and
firing when they should (``promtool test rules`` on alerts_test.yml). promtool comes from
Debian's ``prometheus`` package (scripts/test.sh installs it when it can); without it these
skip, and fail under CI=true."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
    assert "SUCCESS: 5 rules found" in done.stdout


def test_the_alerting_rules_fire_as_their_unit_tests_expect() -> None:
    done = _run("test", "rules", "alerts_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_rules_use_the_metric_names_the_platform_exports() -> None:
    text = (RULES / "alerts.yml").read_text()
    for name in ("mirror_dispatch_latency_ms_bucket", "mirror_error_rate",
                 "broker_submit_success_rate", "mirror_dispatch_attempts_total",
                 "mirror_dispatch_dead_letters_total"):
        assert name in text, name
