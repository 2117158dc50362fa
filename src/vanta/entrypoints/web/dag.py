"""An order's DAG drawn as server-side SVG: one column per depth (manager order, then its
children and audit events, then attempts, fills and the children's audit events)."""

from __future__ import annotations

from html import escape

from markupsafe import Markup

from vanta.application.order_dag import OrderDag

COL_W, ROW_H, BOX_W, BOX_H, PAD = 230, 34, 200, 26, 12
FILL = {"manager_order": "#dbe8f6", "child_order": "#eef0f2", "attempt": "#fff3d6",
        "fill": "#e3f4ea", "audit": "#f3e8fb", "more": "#ffffff", "rail_leg": "#e0f2f1"}


def _short(text: str, n: int = 28) -> str:
    return text if len(text) <= n else text[:n - 1] + "…"


def dag_svg(dag: OrderDag) -> Markup:
    depth: dict[str, int] = {dag.nodes[0].node_id: 0}
    for parent, child in dag.edges:  # edges are listed parents first
        depth[child] = depth.get(parent, 0) + 1
    columns: dict[int, list[str]] = {}
    for n in dag.nodes:
        columns.setdefault(depth.get(n.node_id, 0), []).append(n.node_id)
    pos = {nid: (PAD + d * COL_W, PAD + i * ROW_H)
           for d, ids in columns.items() for i, nid in enumerate(ids)}
    width = PAD * 2 + max(columns) * COL_W + BOX_W
    height = PAD * 2 + max(len(ids) for ids in columns.values()) * ROW_H
    kinds = {k: sum(1 for n in dag.nodes if n.kind == k) for k in FILL}
    desc = ", ".join(f"{v} {k.replace('_', ' ')}{'s' if v != 1 else ''}"
                     for k, v in kinds.items() if v and k != "more")
    out = [f'<svg class="dag" viewBox="0 0 {width} {height}" role="img" '
           f'aria-labelledby="dag-t dag-d" xmlns="http://www.w3.org/2000/svg">',
           f'<title id="dag-t">DAG of order {escape(dag.mo_id)}</title>',
           f'<desc id="dag-d">{escape(desc)}</desc>']
    for parent, child in dag.edges:
        (x1, y1), (x2, y2) = pos[parent], pos[child]
        sx, sy, ex, ey = x1 + BOX_W, y1 + BOX_H / 2, x2, y2 + BOX_H / 2
        mid = (sx + ex) / 2
        out.append(f'<path d="M{sx},{sy} C{mid},{sy} {mid},{ey} {ex},{ey}" fill="none" '
                   f'stroke="#8a939d"/>')
    for n in dag.nodes:
        x, y = pos[n.node_id]
        label = _short(n.label + (f" · {n.state}" if n.state else ""))
        out.append(f'<g data-kind="{n.kind}" data-state="{escape(n.state)}">'
                   f'<title>{escape(n.kind)} {escape(n.node_id)}: {escape(n.label)} '
                   f'{escape(n.state)}</title>'
                   f'<rect x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5" '
                   f'fill="{FILL.get(n.kind, "#fff")}" stroke="#4f5863"/>'
                   f'<text x="{x + 8}" y="{y + 17}" font-size="12" fill="#1b1f24">'
                   f'{escape(label)}</text></g>')
    out.append("</svg>")
    return Markup("".join(out))
