"""An order's DAG (:mod:`vanta.domain.dag`, one page of it) drawn as server-side SVG: one
column per depth (manager order, then its children and audit events, then broker legs,
attempts, fills and the children's audit events). When the page is not the whole order a
``more`` box stands for the children not drawn: a drawing concern, not a node of the DAG."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from vanta.domain.dag import Dag, DagNode

COL_W, ROW_H, BOX_W, BOX_H, PAD = 230, 34, 200, 26, 12
FILL = {"manager_order": "#dbe8f6", "child_order": "#eef0f2", "leg": "#e6eefa",
        "rail_leg": "#e0f2f1", "attempt": "#fff3d6", "fill": "#e3f4ea",
        "audit_event": "#f3e8fb", "more": "#ffffff"}
MORE = DagNode("more", "more", None, {}, {})


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def label(n: DagNode) -> str:
    """The words on a node's box, from what the DAG says about it."""
    a = n.attrs
    if n.kind == "manager_order":
        return f"{a.get('side')} {a.get('qty')} {a.get('symbol')}"
    if n.kind == "child_order":
        skip = a.get("skip_reason")
        return f"{a.get('side')} {a.get('qty')}" + (f" ({skip})" if skip else "")
    if n.kind == "leg":
        return f"broker {a.get('broker_order_ref')}"
    if n.kind == "attempt":
        return f"attempt {a.get('attempt_no')}"
    if n.kind == "fill":
        return f"fill {a.get('qty')} @ {a.get('price')}"
    if n.kind == "more":
        return "more children: see the table"
    return n.state or n.kind  # an audit event: its action


def dag_svg(dag: Dag, *, more: bool = False) -> Markup:
    nodes = [*dag.nodes, MORE] if more else list(dag.nodes)
    edges = [(e.source, e.target) for e in dag.edges]
    if more:
        edges.append((dag.nodes[0].id, MORE.id))
    depth: dict[str, int] = {nodes[0].id: 0}
    for parent, child in edges:  # edges are listed parents first
        depth[child] = depth.get(parent, 0) + 1
    columns: dict[int, list[str]] = {}
    for n in nodes:
        columns.setdefault(depth.get(n.id, 0), []).append(n.id)
    pos = {nid: (PAD + d * COL_W, PAD + i * ROW_H)
           for d, ids in columns.items() for i, nid in enumerate(ids)}
    width = PAD * 2 + max(columns) * COL_W + BOX_W
    height = PAD * 2 + max(len(ids) for ids in columns.values()) * ROW_H
    kinds = {k: sum(1 for n in nodes if n.kind == k) for k in FILL}
    desc = ", ".join(f"{v} {k.replace('_', ' ')}{'s' if v != 1 else ''}"
                     for k, v in kinds.items() if v and k != "more")
    out = [f'<svg class="dag" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="dag-t dag-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="dag-t">DAG of order {escape(dag.mo_id)}</title>',
           f'<desc id="dag-d">{escape(desc)}</desc>']
    for parent, child in edges:
        (x1, y1), (x2, y2) = pos[parent], pos[child]
        sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        mid = (sx + ex) / 2
        out.append(f'<path d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}" fill="none" '
                   f'stroke="#8a939d"/>')
    for n in nodes:
        x, y = pos[n.id]
        text, state = label(n), n.state or ""
        shown = _short(text + (f" · {state}" if state and state != text else ""))
        out.append(f'<g data-kind="{n.kind}" data-state="{escape(state)}">'
                   f'<title>{escape(n.kind)} {escape(n.id)}: {escape(text)} '
                   f'{escape(state)}</title>'
                   f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" '
                   f'fill="{FILL.get(n.kind, "#fff")}" stroke="#4f5863"/>'
                   f'<text x="{x + 8}" y="{y + 17}" font-size="12" fill="#1b1f24">'
                   f'{escape(shown)}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))
