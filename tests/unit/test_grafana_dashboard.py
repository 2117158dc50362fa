"""The committed Grafana dashboard queries only metrics this process exports: every
expression's metric names are among the Prometheus registry's sample names, and the four
names of the observability spec each appear in some panel."""

from __future__ import annotations

import json
import re
from pathlib import Path

from vanta.adapters.metrics import metric_names

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "vanta-mirroring.json"
PROMQL_WORDS = {
    "sum", "min", "max", "avg", "count", "topk", "bottomk", "by", "without", "on",
    "ignoring", "group_left", "group_right", "rate", "irate", "increase", "delta",
    "histogram_quantile", "and", "or", "unless", "offset", "clamp_min", "clamp_max", "abs",
}
SPEC = ("mirror_dispatch_latency_ms", "mirror_error_rate", "broker_submit_success_rate",
        "webhook_retry_count")


def _exprs(panels: list[dict[str, object]]) -> list[str]:
    out: list[str] = []
    for p in panels:
        out += [str(t["expr"]) for t in p.get("targets", [])]  # type: ignore[attr-defined]
        out += _exprs(p.get("panels", []))  # type: ignore[arg-type]
    return out


def metrics_in(expr: str) -> set[str]:
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # strings
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", bare)  # label matchers, ranges
    bare = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", "", bare)  # label lists
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare))
    return names - PROMQL_WORDS


def test_the_name_extraction_sees_metrics_not_labels_or_functions() -> None:
    assert metrics_in('topk(3, sum by (vault_id) (rate(a_total{outcome!="ack"}[5m])))') \
        == {"a_total"}


def test_every_expression_uses_exported_metrics_only() -> None:
    doc = json.loads(DASHBOARD.read_text())
    exprs = _exprs(doc["panels"])
    assert exprs
    exported = metric_names()
    used: set[str] = set()
    for e in exprs:
        names = metrics_in(e)
        assert names, e
        assert names <= exported, (e, names - exported)
        used |= names
    for spec_name in SPEC:
        assert any(u == spec_name or u.startswith(spec_name + "_") for u in used), spec_name
