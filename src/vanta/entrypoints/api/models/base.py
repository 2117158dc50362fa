"""The request models' common ground: the base class, exact decimal fields, and the mapping
of a validation failure onto the problem codes the API has always answered.

Bodies are decoded by ``read_json`` (exact decimals, size limit) and then validated with
``Model.model_validate``; FastAPI never decodes a body itself (:func:`body`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, TypeVar

from fastapi import Depends, Request
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
)
from pydantic.json_schema import models_json_schema
from pydantic_core import PydanticCustomError

from vanta.entrypoints.api.jsonbody import MAX_BODY_BYTES, read_json
from vanta.entrypoints.api.problems import ApiProblem
from vanta.entrypoints.api.schemas import UNSUPPORTED_MEDIA_TYPE

M = TypeVar("M", bound="RequestModel")


class RequestModel(BaseModel):
    """A request body: unknown keys are refused, nothing is coerced silently.

    ``codes`` names the problem code of a failing field: keys are ``"field"`` or
    ``"field:pydantic_error_type"`` (dotted for nested fields; a parent's entry covers its
    children; ``*`` is any field). Unknown keys answer ``unknown_field`` and absent
    required keys ``missing_field`` unless a ``:extra_forbidden`` / ``:missing`` entry says
    otherwise; a body that is not an object answers ``body_code``."""

    model_config = ConfigDict(extra="forbid")
    codes: ClassVar[Mapping[str, str]] = {}
    body_code: ClassVar[str] = "invalid_body"
    # fields holding a union tagged by a key: the tag Pydantic puts in an error's location
    # after the field's name is no part of the input's path
    tagged: ClassVar[frozenset[str]] = frozenset()

    def to_raw(self) -> dict[str, Any]:
        """The validated body as the application functions take it: JSON types, Decimal
        numbers as exact strings, only the keys the client sent."""
        out: dict[str, Any] = self.model_dump(mode="json", exclude_unset=True)
        return out


class NestedModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Patterns are read alike by the server (Rust regex), JSON Schema (ECMA-262) and the test
# generators only when they avoid \d, \s, \S and "." (each dialect has its own idea of a
# digit, a space and a line end): digits are [0-9], and white space is spelt out, as the
# characters Python's str.isspace() (and so the application's own checks) call space.
WS = r"\t\n\x0b\x0c\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
NOT_WS = f"[^{WS}]"


# -- exact decimals ----------------------------------------------------------------------------

def positive_pattern(int_digits: int, places: int) -> str:
    """Plain decimal notation of a number in (0, 10**int_digits) with at most ``places``
    decimals, as a regular expression without look-arounds (any generator can use it)."""
    frac = rf"(\.[0-9]{{1,{places}}})?" if places else ""
    alts = [rf"0*[1-9][0-9]{{0,{int_digits - 1}}}{frac}"]
    for k in range(places):  # the first non-zero digit is the (k+1)-th decimal
        rest = places - k - 1
        alts.append(rf"0*\.{'0' * k}[1-9]" + (rf"[0-9]{{0,{rest}}}" if rest else ""))
    return "^(" + "|".join(alts) + ")$"


def non_negative_pattern(int_digits: int, places: int) -> str:
    return rf"^[0-9]{{1,{int_digits}}}(\.[0-9]{{1,{places}}})?$"


def _decimal_from(pattern: str) -> Any:
    rx = re.compile(pattern)

    def convert(value: object) -> object:
        if isinstance(value, bool):  # JSON true is not the number 1
            raise PydanticCustomError("decimal_type", "must be a number or a decimal string")
        if isinstance(value, str):
            if not rx.fullmatch(value):
                raise PydanticCustomError("decimal_string",
                                          "must be a decimal string within the allowed range")
            try:
                return Decimal(value)
            except InvalidOperation:  # pragma: no cover - the pattern admits decimals only
                raise PydanticCustomError("decimal_string", "must be a decimal") from None
        return value

    return convert


def decimal_type(*, pattern: str, gt: Decimal | int | None = None,
                 ge: Decimal | int | None = None, lt: Decimal | int | None = None,
                 le: Decimal | int | None = None, places: int | None = None,
                 description: str | None = None) -> Any:
    """An exact ``Decimal`` field given as a JSON number or a plain decimal string; the
    schema documents both forms with the same bounds (the string form by ``pattern``)."""
    number: dict[str, Any] = {"type": "number"}
    if gt is not None:
        number["exclusiveMinimum"] = float(gt)
    if ge is not None:
        number["minimum"] = float(ge)
    if lt is not None:
        number["exclusiveMaximum"] = float(lt)
    if le is not None:
        number["maximum"] = float(le)
    schema: dict[str, Any] = {"anyOf": [number, {"type": "string", "pattern": pattern}]}
    if description:
        schema["description"] = description
    return Annotated[Decimal, BeforeValidator(_decimal_from(pattern)),
                     Field(gt=gt, ge=ge, lt=lt, le=le, decimal_places=places, allow_inf_nan=False),
                     WithJsonSchema(schema)]


# RFC 3339 date-time, as every party parses it: years 0001-9999, at most microseconds, an
# offset (Z or +hh:mm); no leap second (Python has none)
RFC3339 = (r"^(000[1-9]|00[1-9][0-9]|0[1-9][0-9]{2}|[1-9][0-9]{3})-(0[1-9]|1[0-2])-"
           r"(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
           r"(\.[0-9]{1,6})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")
_RFC3339 = re.compile(RFC3339)


def _rfc3339(value: object) -> object:
    # a string, and that form only: no epoch seconds ("0"), no date without a time
    if not isinstance(value, str) or not _RFC3339.match(value):
        raise PydanticCustomError("datetime_type", "must be an RFC 3339 timestamp with its "
                                  "offset, e.g. 2026-01-31T12:00:00Z")
    return value


Timestamp = Annotated[AwareDatetime, BeforeValidator(_rfc3339),
                      WithJsonSchema({"type": "string", "format": "date-time",
                                      "pattern": RFC3339})]
"""An RFC 3339 timestamp string with its offset (``Z`` or ``+hh:mm``)."""


def _whole(value: object) -> object:
    # JSON has one number type: 1609.0 is the integer 1609 (as JSON Schema says too)
    if isinstance(value, bool) or (isinstance(value, Decimal) and value != value.to_integral()):
        raise PydanticCustomError("int_type", "must be a whole number")
    return int(value) if isinstance(value, Decimal) else value


WholeNumber = Annotated[int, BeforeValidator(_whole), Field(strict=True)]


# -- validation failures as problems -----------------------------------------------------------

_ORDER = {"extra_forbidden": 1, "missing": 2}
_BODY_TYPES = {"model_type", "model_attributes_type", "dict_type"}


def _dotted(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc)


def _code_for(model: type[RequestModel], loc: Sequence[int | str], kind: str) -> str:
    # an unknown or a missing key is that, whatever the field, unless said otherwise
    structural = kind in ("extra_forbidden", "missing")
    for n in range(len(loc), 0, -1):
        prefix = _dotted(loc[:n])
        for key in (f"{prefix}:{kind}",) if structural else (f"{prefix}:{kind}", prefix):
            if key in model.codes:
                return model.codes[key]
    for key in (f"*:{kind}",) if structural else (f"*:{kind}", "*"):  # the model's default
        if key in model.codes:
            return model.codes[key]
    return {"extra_forbidden": "unknown_field", "missing": "missing_field"}.get(
        kind, "validation_error")


def problem_from(model: type[RequestModel], exc: ValidationError) -> ApiProblem:
    errors = exc.errors(include_url=False, include_input=False)
    for e in errors:
        loc = e["loc"]
        if len(loc) > 1 and loc[0] in model.tagged:
            e["loc"] = (loc[0], *loc[2:])
    if any(not e["loc"] and e["type"] in _BODY_TYPES for e in errors):
        return ApiProblem(422, model.body_code, "the body must be a JSON object")
    errors.sort(key=lambda e: _ORDER.get(e["type"], 3))
    first = errors[0]
    loc, kind = first["loc"], first["type"]
    code = _code_for(model, loc, kind)
    field = _dotted(loc) or None
    if kind == "extra_forbidden":
        unknown = sorted(_dotted(e["loc"]) for e in errors
                         if e["type"] == kind and e["loc"][:-1] == loc[:-1])
        field, detail = unknown[0], f"unknown field(s): {', '.join(unknown)}"
    elif kind == "missing":
        detail = f"{field} is required"
    else:
        detail = f"{field}: {first['msg']}" if field else str(first["msg"])
    extra = {"field": field} if field else {}
    return ApiProblem(422, code, detail, **extra)


def parse(model: type[M], raw: object) -> M:
    try:
        return model.model_validate(raw)
    except ValidationError as e:
        raise problem_from(model, e) from None


# -- the route side ----------------------------------------------------------------------------

_documented: dict[str, type[BaseModel]] = {}


def body(model: type[M], *, required: bool = True, max_bytes: int = MAX_BODY_BYTES) -> Any:
    """A dependency: the request body, decoded by ``read_json`` and validated by ``model``.
    Not ``required``: no body at all is ``{}``."""
    async def dep(request: Request) -> M:
        if not required and _no_body(request):
            return parse(model, {})
        return parse(model, await read_json(request, max_bytes=max_bytes))

    dep.__name__ = f"{model.__name__}_body"
    return Depends(dep)


def _no_body(request: Request) -> bool:
    headers = request.headers
    return headers.get("content-length", "0") == "0" and "transfer-encoding" not in headers


def openapi_body(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` declaring ``model`` as the JSON request body of an operation, and
    the 415 a body of another media type gets."""
    _documented[model.__name__] = model
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": required,
                            "content": {"application/json": {"schema": ref}}},
            "responses": {"415": UNSUPPORTED_MEDIA_TYPE}}


def documented_schemas() -> dict[str, Any]:
    """The JSON Schemas of every documented body model, nested models included."""
    _, top = models_json_schema([(m, "validation") for m in _documented.values()],
                                ref_template="#/components/schemas/{model}")
    return dict(top.get("$defs", {}))
