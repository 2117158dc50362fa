"""Server-side SVG charts: small, dependency-free, accessible (a title and a description
naming the latest values), drawn with presentation attributes only (the CSP allows no
inline style)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from html import escape

from markupsafe import Markup

W, H = 640, 240
PAD_L, PAD_R, PAD_T, PAD_B = 64, 16, 28, 36
COLOURS = ("#0b5cad", "#b3261e", "#17603a", "#7a4b00")

Point = tuple[datetime, Decimal | float | int]


def _fmt(v: float) -> str:
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:.2f}".rstrip("0").rstrip(".") if v != int(v) else f"{int(v)}"


def line_chart(series: Sequence[tuple[str, Sequence[Point]]], *, title: str,
               unit: str = "", x_range: tuple[datetime, datetime] | None = None) -> Markup:
    """One or more series over time on shared axes; ``x_range`` fixes the time axis (else
    it spans the points)."""
    pts = [(t, float(v)) for _, s in series for t, v in s]
    if not pts:
        return Markup(f'<p class="empty">No data for {escape(title)} yet.</p>')
    first, last = x_range or (min(t for t, _ in pts), max(t for t, _ in pts))
    t0, t1 = first.timestamp(), last.timestamp()
    lo = min(min(v for _, v in pts), 0.0)
    hi = max(v for _, v in pts)
    hi = hi if hi > lo else lo + 1
    span_t = (t1 - t0) or 1.0

    def x(t: datetime) -> float:
        return PAD_L + (t.timestamp() - t0) / span_t * (W - PAD_L - PAD_R)

    def y(v: float) -> float:
        return H - PAD_B - (v - lo) / (hi - lo) * (H - PAD_T - PAD_B)

    parts = [f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" '
             f'aria-labelledby="c-{id(series)}-t c-{id(series)}-d" '
             f'xmlns="http://www.w3.org/2000/svg">',
             f'<title id="c-{id(series)}-t">{escape(title)}</title>']
    latest = "; ".join(f"{name}: {_fmt(float(s[-1][1]))} {unit}".strip()
                       for name, s in series if s)
    parts.append(f'<desc id="c-{id(series)}-d">Latest {escape(latest)}</desc>')
    parts.append(f'<text x="{PAD_L}" y="18" font-size="14" fill="#1b1f24">'
                 f'{escape(title)}</text>')
    for frac in (0, 0.5, 1):
        v = lo + (hi - lo) * frac
        parts.append(f'<line x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#d5d9de"/>')
        parts.append(f'<text x="{PAD_L - 6}" y="{y(v) + 4:.1f}" font-size="11" '
                     f'text-anchor="end" fill="#4f5863">{_fmt(v)}</text>')
    parts.append(f'<text x="{PAD_L}" y="{H - 12}" font-size="11" fill="#4f5863">'
                 f'{first:%Y-%m-%d %H:%M}</text>')
    parts.append(f'<text x="{W - PAD_R}" y="{H - 12}" font-size="11" text-anchor="end" '
                 f'fill="#4f5863">{last:%Y-%m-%d %H:%M}</text>')
    for i, (name, s) in enumerate(series):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{x(t):.1f},{y(float(v)):.1f}" for t, v in s)
        if len(s) == 1:
            t, v = s[0]
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(float(v)):.1f}" r="3" '
                         f'fill="{colour}"/>')
        else:
            parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                         f'stroke-width="2"/>')
        parts.append(f'<text x="{W - PAD_R - 4}" y="{18 + 14 * i}" font-size="12" '
                     f'text-anchor="end" fill="{colour}">{escape(name)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
