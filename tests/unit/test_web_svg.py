"""The web app's server-side SVG: charts place points on the axes they name, and the DAG
draws one box per node and one curve per edge, escaping what it prints."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from vanta.application.order_dag import DagNode, OrderDag
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


def test_the_dag_draws_every_node_and_edge() -> None:
    nodes = [DagNode("mo", "manager_order", "buy 10 AAPL", "expanded"),
             DagNode("fo1", "child_order", "buy 5", "ack"),
             DagNode("a1", "attempt", "attempt 1", "ack"),
             DagNode("e1", "audit", "<script>", "")]
    edges = [("mo", "fo1"), ("fo1", "a1"), ("mo", "e1")]
    svg = str(dag_svg(OrderDag("mo", nodes, edges, 1, False)))
    assert svg.count("<rect") == 4 and svg.count("<path") == 3
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert 'data-kind="attempt" data-state="ack"' in svg
