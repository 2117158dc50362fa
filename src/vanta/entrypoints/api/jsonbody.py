"""Decoding a JSON request body: the one place that does it, for every route."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from fastapi import Request

from vanta.entrypoints.api.problems import ApiProblem

MAX_BODY_BYTES = 64 * 1024


async def read_json(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiProblem(413, "body_too_large", f"the body exceeds {MAX_BODY_BYTES} bytes")
    try:
        # Decimals, not floats: 0.1 stays 0.1 all the way to sizing.
        return json.loads(raw, parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise ApiProblem(400, "malformed_json", "the body is not valid JSON") from None
