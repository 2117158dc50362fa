"""The web app's server-side SVG: charts place points on the axes they name, and the DAG
draws one box per node and one curve per edge, escaping what it prints."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from vanta.domain.dag import ChildFacts, DagNode, build_dag
from vanta.entrypoints.web.charts import line_chart
from vanta.entrypoints.web.dag import dag_svg

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_line_chart_spans_its_points_or_the_range_it_is_given() -> None:
    svg = str(line_chart([("NAV", [(T0, 100), (T0 + timedelta(hours=1), 150)])],
                         title="NAV <history>", unit="USD"))
    assert svg.startswith("<svg") and "NAV &lt;history&gt;" in svg
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    (x1, y1), (x2, y2) = (tuple(map(float, p.split(","))) for p in points.group(1).split())
    assert x1 < x2 and y2 < y1  # later is right, higher is up
    assert "Latest NAV: 150 USD" in svg  # the description a screen reader gets
    one = str(line_chart([("P95", [(T0 + timedelta(hours=5), 7)])], title="t",
                         x_range=(T0, T0 + timedelta(hours=6))))
    cx = float(re.search(r'cx="([^"]+)"', one).group(1))  # type: ignore[union-attr]
    assert 500 < cx < 600  # five sixths along the fixed axis, not at its start
    assert "No data" in str(line_chart([("x", [])], title="t"))


def test_the_dag_draws_every_node_and_edge_and_a_more_box() -> None:
    order = DagNode("mo:m", "manager_order", "expanded", {},
                    {"side": "buy", "qty": "10", "symbol": "AAPL"})
    child = DagNode("fo:f1", "child_order", "ack", {}, {"side": "buy", "qty": "5"})
    attempt = DagNode("attempt:f1:1", "attempt", "ack", {}, {"attempt_no": 1})
    event = DagNode("audit:1", "audit_event", "<script>", {"ts": None}, {})
    dag = build_dag(order, "m", [ChildFacts(child, None, [attempt], [])],
                    {"mo:m": [event]})
    svg = str(dag_svg(dag))
    assert svg.count("<rect") == 4 and svg.count("<path") == 3
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'data-kind="attempt" data-state="ack"' in svg
    assert "buy 10 AAPL" in svg and "attempt 1" in svg
    more = str(dag_svg(dag, more=True))
    assert more.count("<rect") == 5 and more.count("<path") == 4
    assert 'data-kind="more"' in more and 'data-kind="more"' not in svg
