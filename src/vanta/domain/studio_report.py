"""A Replay Studio run as one document: every configuration side by side, order by order,
the real follower's recorded outcome beside them, and the summaries; canonical JSON and its
sha256, so the same input gives the same bytes and the same hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from vanta.domain.errors import ValidationFailed
from vanta.domain.money import ZERO, normalize
from vanta.domain.studio import (
    ENGINE_VERSION,
    MAX_CONFIGS,
    ActualChild,
    Book,
    Outcome,
    RecordedOrder,
    Simulation,
    StudioConfig,
    actual_step,
    observe_price,
    step_all,
)
from vanta.domain.studio_fees import FeeTerms

_PCT = Decimal("0.0001")


def _s(v: Decimal | None) -> str | None:
    return None if v is None else str(v)


def outcome_json(o: Outcome) -> dict[str, Any]:
    return {"qty": str(o.qty), "skip": o.skip, "symbol": o.symbol, "cap_applied": o.cap_applied,
            "fill_qty": str(o.fill_qty), "fill_price": _s(o.fill_price),
            "nav": str(normalize(o.nav))}


class StudioRun:
    """Feed recorded orders in order (``add``), then seal the answer (``seal``). With
    ``compare``, each order also takes the real follower's recorded child (or None when it
    has none), accounted under ``actual_fees``.

    Each order's row and chart point are kept only as their canonical JSON bytes: a window
    of many orders times 8 configurations stays a few bytes per outcome, not a tree of
    Python objects."""

    def __init__(self, configs: Sequence[StudioConfig], starting_nav: Decimal, *,
                 compare: bool = False, actual_fees: FeeTerms | None = None) -> None:
        if not configs or len(configs) > MAX_CONFIGS:
            raise ValidationFailed(f"give 1 to {MAX_CONFIGS} configurations",
                                   code="too_many_configs", field="configs")
        if starting_nav <= 0:
            raise ValidationFailed("the starting NAV must be above 0", code="invalid_nav",
                                   field="starting_nav")
        self.starting_nav = starting_nav
        self.sims = [Simulation(c, starting_nav, i) for i, c in enumerate(configs)]
        terms = actual_fees or configs[0].fees
        self.actual = Book(starting_nav, terms) if compare else None
        self.prices: dict[str, Decimal] = {}
        self.orders = 0
        self.differing = [0] * len(self.sims)  # orders sized unlike the real follower's
        series = len(self.sims) + (1 if compare else 0)
        self._rows: list[bytes] = []
        self._points: list[bytes] = [encode([None, *[str(starting_nav)] * series])]

    def add(self, rec: RecordedOrder, actual: ActualChild | None = None) -> dict[str, Any]:
        """One order for every configuration; its row (as it appears in the answer)."""
        observe_price(self.prices, rec)
        outs = step_all(self.sims, rec, self.prices)
        o = rec.order
        row: dict[str, Any] = {
            "mo_id": o.mo_id, "at": rec.at.isoformat(), "symbol": o.symbol,
            "side": o.side.value, "qty": str(o.qty), "price": _s(rec.price),
            "results": [outcome_json(x) for x in outs]}
        navs = [r["nav"] for r in row["results"]]
        if self.actual is not None:
            real = actual_step(self.actual, rec, actual, self.prices)
            row["actual"] = outcome_json(real)
            row["diff"] = [str(normalize(x.qty - real.qty)) for x in outs]
            for i, x in enumerate(outs):
                if x.qty != real.qty or x.skip != real.skip:
                    self.differing[i] += 1
            navs.append(row["actual"]["nav"])
        self._rows.append(encode(row))
        self._points.append(encode([row["at"], *navs]))
        self.orders += 1
        return row

    def document(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The answer without its rows and chart (kept as bytes): ``request`` is the
        normalized input. Closes the fee periods: call it once."""
        for s in self.sims:
            s.book.fees.finish(s.book.nav)
        if self.actual is not None:
            self.actual.fees.finish(self.actual.nav)
        doc: dict[str, Any] = {
            "engine_version": ENGINE_VERSION, "request": dict(request), "orders": self.orders,
            "summary": [summary(s.config.label, s.book) for s in self.sims],
            "actual": None if self.actual is None else summary("actual", self.actual),
        }
        if self.actual is not None:
            doc["differing_orders"] = list(self.differing)
        return doc

    def seal(self, request: Mapping[str, Any]) -> tuple[str, bytes]:
        """The answer's sha256 and its bytes: ``{"sha256": …,`` followed by the canonical
        form of everything else (what ``encode`` gives for the whole document, put together
        from the parts already encoded)."""
        parts = {k: encode(v) for k, v in self.document(request).items()}
        parts["rows"] = b"[" + b",".join(self._rows) + b"]"
        series = [s.config.label for s in self.sims] + (["actual"] if self.actual else [])
        parts["equity_curve"] = b'{"points":[' + b",".join(self._points) + \
            b'],"series":' + encode(series) + b"}"
        body = b"{" + b",".join(encode(k) + b":" + parts[k] for k in sorted(parts)) + b"}"
        digest = hashlib.sha256(body).hexdigest()
        return digest, b'{"sha256":"' + digest.encode() + b'",' + body[1:]


def summary(label: str, book: Book) -> dict[str, Any]:
    fall, peak = book.max_dd_ratio
    pct = (fall * 100 / peak).quantize(_PCT) if peak > 0 and fall > 0 else ZERO
    pnl = book.nav - book.start
    fees = book.fees.total
    return {
        "label": label, "starting_nav": str(book.start),
        "final_nav": str(normalize(book.nav)), "pnl": str(normalize(pnl)), "fees": str(fees),
        "pnl_after_fees": str(normalize(pnl - fees)),
        "max_drawdown": str(normalize(book.max_dd)), "max_drawdown_pct": str(pct),
        "children": book.children, "skipped": dict(sorted(book.skips.items())),
        "unpriced_fills": book.unpriced,
        "fee_periods": [{"label": p.label, "nav_end": str(p.nav_end), "pnl": str(p.pnl),
                         "chargeable_gain": str(p.chargeable_gain), "fee": str(p.fee),
                         "hwm_before": str(p.hwm_before), "hwm_after": str(p.hwm_after)}
                        for p in book.fees.periods],
    }


def encode(value: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the one byte form the hash is taken of."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False).encode()
