"""The one place request bodies are decoded from JSON.

Every route that takes a JSON body calls :func:`read_json` (or :func:`decode` on bytes it
already holds), so the limits below hold everywhere:

* **size**: at most ``MAX_BODY_BYTES`` (64 KiB) unless the route asks for a larger cap;
  over it, ``413 body_too_large``;
* **nesting**: arrays and objects nested at most ``MAX_DEPTH`` (32) deep; deeper, ``400
  json_too_deep``. The depth is measured on the raw text before parsing, without recursion,
  so a body such as ``[[[[…]]]]`` 10,000 deep never reaches the (recursive) decoder;
* **duplicate keys**: an object naming one key twice (``{"qty": 0, "qty": 1}``) is ``400
  duplicate_json_key``: two parsers that disagree on which copy wins must never see the same
  body;
* **media type**: the request says ``Content-Type: application/json`` (parameters such as
  ``charset=utf-8`` allowed; a charset other than UTF-8 is not); anything else, a missing
  header included, is ``415 unsupported_media_type``. Billing provider webhooks do not come
  through here: they read the raw bytes their signature covers;
* **syntax**: UTF-8 JSON text (RFC 8259), without the ``NaN``/``Infinity`` extensions; anything
  else is ``400 malformed_json``.

Numbers with a fraction or exponent become :class:`~decimal.Decimal`, never floats, so 0.1
stays 0.1 all the way to sizing.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any, NoReturn

from starlette.requests import Request

from vanta.entrypoints.api.problems import ApiProblem

__all__ = ["JSON_MEDIA_TYPE", "MAX_BODY_BYTES", "MAX_DEPTH", "check_media_type", "decode",
           "nesting_depth", "read_json"]

JSON_MEDIA_TYPE = "application/json"

MAX_BODY_BYTES = 64 * 1024
MAX_DEPTH = 32

# A JSON string (escapes included), then everything that is not a bracket: what remains
# of a body is its bracket skeleton. Both are single C-level passes.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def nesting_depth(text: str, limit: int = MAX_DEPTH) -> int | None:
    """How deep arrays and objects nest in ``text``, counting up to ``limit + 1`` at most;
    None when the brackets do not balance (not JSON).

    Each pass removes every empty ``[]``/``{}`` pair, i.e. the innermost level, so the number
    of passes is the depth; no recursion, and at most ``limit + 1`` passes. A run of more
    than ``limit`` opening brackets (the usual ``[[[[…``) is answered without any pass.
    """
    skeleton = _NOT_BRACKET.sub("", _STRING.sub("", text))
    if re.search(f"[\\[{{]{{{limit + 1}}}", skeleton):
        return limit + 1
    depth = 0
    while skeleton and depth <= limit:
        shorter = _EMPTY_PAIR.sub("", skeleton)
        if len(shorter) == len(skeleton):
            return None  # brackets that never pair up
        skeleton = shorter
        depth += 1
    return depth


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def _constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not JSON")


def _too_large(max_bytes: int) -> ApiProblem:
    return ApiProblem(413, "body_too_large", f"the body exceeds {max_bytes} bytes")


def decode(raw: bytes, *, max_bytes: int = MAX_BODY_BYTES, max_depth: int = MAX_DEPTH) -> Any:
    """Decode a request body under the module's rules; refusals are :class:`ApiProblem`."""
    if len(raw) > max_bytes:
        raise _too_large(max_bytes)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ApiProblem(400, "malformed_json", "the body is not UTF-8 JSON") from None
    depth = nesting_depth(text, max_depth)
    if depth is None:
        raise ApiProblem(400, "malformed_json", "the body is not valid JSON")
    if depth > max_depth:
        raise ApiProblem(400, "json_too_deep",
                         f"arrays and objects nest deeper than {max_depth} levels",
                         max_depth=max_depth)
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_constant,
                          object_pairs_hook=_object)
    except _DuplicateKey as e:
        raise ApiProblem(400, "duplicate_json_key",
                         f"an object names the key {e.key!r} more than once",
                         key=e.key) from None
    except (ValueError, RecursionError):
        # RecursionError cannot happen under the depth limit; kept so that no input is a 500
        raise ApiProblem(400, "malformed_json", "the body is not valid JSON") from None


def check_media_type(content_type: str | None) -> None:
    """Refuse (415) a body that does not say it is JSON: a form or text body decoded as JSON
    by accident is how a cross-site form post becomes an API call."""
    media, *params = (content_type or "").split(";")
    charsets = [v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in params)
                if k.strip().lower() == "charset"]
    if media.strip().lower() != JSON_MEDIA_TYPE or any(c not in ("utf-8", "utf8")
                                                       for c in charsets):
        shown = (content_type or "none")[:100]
        raise ApiProblem(415, "unsupported_media_type",
                         f"the body must be sent as {JSON_MEDIA_TYPE} (UTF-8), not {shown}")


async def read_json(request: Request, *, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """The request's body, decoded by :func:`decode`. The body is read only up to the cap:
    a larger one is refused without being held in memory."""
    check_media_type(request.headers.get("content-type"))
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise _too_large(max_bytes)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():  # the cached body, if something read it already
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        chunks.append(chunk)
    raw = b"".join(chunks)
    request._body = raw  # as Request.body() caches it, for any later reader
    return decode(raw, max_bytes=max_bytes)
