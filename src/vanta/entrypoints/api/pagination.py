"""Opaque cursors for keyset pagination over (created_at, id)."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from vanta.application.ports.records_orders import ChildOrderRecord, ManagerOrderRecord
from vanta.entrypoints.api.problems import ApiProblem


def encode(ts: datetime, key: str) -> str:
    raw = json.dumps([ts.isoformat(), key], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        ts, key = json.loads(raw)
        return datetime.fromisoformat(ts), str(key)
    except (ValueError, TypeError):
        raise ApiProblem(422, "invalid_cursor", "the cursor is not one this API issued",
                         field="cursor") from None


def page(rows: Sequence[ManagerOrderRecord | ChildOrderRecord], limit: int, key: str,
         items: list[dict[str, Any]]) -> dict[str, Any]:
    """``rows`` were fetched with ``limit + 1`` so a further page is known without a count;
    ``key`` names the id attribute the rows are ordered by after ``created_at``."""
    more = len(rows) > limit
    last = rows[limit - 1] if more else None
    return {"data": items[:limit],
            "next_cursor": encode(last.created_at, getattr(last, key))
            if last is not None else None}


def encode_key(key: str) -> str:
    """Cursor over a plain id order (lists without a time axis)."""
    return base64.urlsafe_b64encode(json.dumps(["k", key]).encode()).decode().rstrip("=")


def cursor_key(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        kind, key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "k":
            raise ValueError
        return str(key)
    except (ValueError, TypeError):
        raise ApiProblem(422, "invalid_cursor", "the cursor is not one this API issued",
                         field="cursor") from None
