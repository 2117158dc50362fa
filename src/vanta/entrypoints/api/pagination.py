"""Opaque cursors for keyset pagination over (created_at, id)."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from vanta.application.ports.records_orders import ChildOrderRecord, ManagerOrderRecord
from vanta.entrypoints.api.problems import ApiProblem

R = TypeVar("R")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000


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


def keyset_page(rows: Sequence[R], limit: int, items: list[dict[str, Any]],
                key: Callable[[R], tuple[datetime, str]]) -> dict[str, Any]:
    """:func:`page` for any record: ``key`` gives the (timestamp, id) the rows are ordered
    by. ``items`` are the visible ones among ``rows[:limit]``: the cursor follows the rows
    read, so hiding one never ends the listing early."""
    more = len(rows) > limit
    return {"data": items, "next_cursor": encode(*key(rows[limit - 1])) if more else None}


def encode_pair(first: str, second: str) -> str:
    """Cursor over a two-part text key (instruments: venue, symbol)."""
    raw = json.dumps(["p", first, second], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_pair(cursor: str | None) -> tuple[str, str] | None:
    if cursor is None:
        return None
    try:
        kind, first, second = json.loads(
            base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "p" or not isinstance(first, str) or not isinstance(second, str):
            raise ValueError
        return first, second
    except (ValueError, TypeError):
        raise ApiProblem(422, "invalid_cursor", "the cursor is not one this API issued",
                         field="cursor") from None


def query_paging(params: Any) -> tuple[int, str | None]:
    """``limit`` and ``cursor`` read by hand, for a route that skips FastAPI's parameter
    solving (PlainRoute); refused with the codes the declared parameters answer."""
    raw, cursor = params.get("limit"), params.get("cursor")
    limit = DEFAULT_LIMIT
    if raw is not None:
        try:
            limit = int(raw)
        except ValueError:
            limit = 0
        if not 1 <= limit <= MAX_LIMIT:
            raise ApiProblem(422, "validation_error",
                             f"query.limit: limit must be an integer from 1 to {MAX_LIMIT}",
                             field="query.limit")
    if cursor == "":
        raise ApiProblem(422, "invalid_cursor", "the cursor is not one this API issued",
                         field="cursor")
    return limit, cursor
