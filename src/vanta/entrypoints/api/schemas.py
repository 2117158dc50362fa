"""JSON Schemas of request bodies the routes parse themselves (to keep numbers exact)."""

from __future__ import annotations

from typing import Any

NUMBER_OR_STRING: dict[str, Any] = {"oneOf": [{"type": "number"}, {"type": "string"}]}

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["vault_id", "symbol", "side", "qty"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "description": "the source's order id; resubmitting the "
               "same id never creates a second order"},
        "vault_id": {"type": "string"},
        "symbol": {"type": "string", "example": "AAPL"},
        "venue": {"type": "string", "example": "nasdaq"},
        "side": {"type": "string", "enum": ["buy", "sell"]},
        "qty": NUMBER_OR_STRING,
        "tif": {"type": "string", "enum": ["day", "gtc", "ioc", "fok"]},
        "ref_price": NUMBER_OR_STRING,
        "closes_position": {"type": "boolean"},
        "manager_nav": NUMBER_OR_STRING,
        "reason_vector": {"type": "array", "items": {"type": "string"}},
        "conviction": {"type": "object"},
        "provenance": {"type": "object"},
        "dag_id": {"type": "string"},
        "meta": {"type": "object"},
    },
}

PROTECTIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "drawdown_stop_pct": NUMBER_OR_STRING,
        "daily_loss_limit_usd": NUMBER_OR_STRING,
        "max_order_usd": NUMBER_OR_STRING,
        "allow_symbols": {"type": "array", "items": {"type": "string"}},
        "deny_symbols": {"type": "array", "items": {"type": "string"}},
        "symbol_map": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}

_SETTINGS: dict[str, Any] = {
    "label": {"type": "string"},
    "mode": {"type": "string", "enum": ["proportional", "capped", "shadow"]},
    "scale": NUMBER_OR_STRING,
    "max_pos_usd": {"oneOf": [{"type": "number"}, {"type": "string"}, {"type": "null"}]},
    "kill_switch": {"type": "boolean"},
    "paused": {"type": "boolean"},
    "scale_mode": {"type": "string", "enum": ["fixed", "nav_ratio"]},
    "nav_multiplier": NUMBER_OR_STRING,
    "fractional": {"type": "boolean"},
    "protections": PROTECTIONS_SCHEMA,
    "plan": {"type": "string", "enum": ["core", "pro", "institutional"]},
    "overlay_opt_in": {"type": "boolean"},
}

FOLLOWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "oneOf": [{"required": ["webhook"]}, {"required": ["bridged"]}],
    "additionalProperties": False,
    "properties": {
        **_SETTINGS,
        "webhook": {"type": "object", "required": ["url"],
                    "properties": {"url": {"type": "string", "format": "uri"}}},
        "bridged": {"type": "object", "required": ["broker"], "properties": {
            "broker": {"type": "string", "enum": ["paper", "alpaca", "tradier", "coinbase"]},
            "credentials": {"type": "object", "additionalProperties": {"type": "string"}}}},
        "sync": {"type": "boolean", "description": "size buys that bring the new follower "
                 "to the manager's current positions"},
    },
}

FOLLOWER_PATCH_SCHEMA: dict[str, Any] = {
    "type": "object", "minProperties": 1, "additionalProperties": False,
    "properties": {**_SETTINGS, "webhook": {"type": "object", "properties": {
        "url": {"type": "string", "format": "uri"}, "enabled": {"type": "boolean"}}}},
}

NAV_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["nav"], "additionalProperties": False,
    "properties": {"nav": NUMBER_OR_STRING, "as_of": {"type": "string", "format": "date-time"}},
}

OVERLAY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "flip": {"type": "object", "properties": {"amplify": NUMBER_OR_STRING,
                                                  "ttl_minutes": NUMBER_OR_STRING}},
        "persona": {"type": "string", "enum": ["Athena", "Apollo", "Ares", "Nemesis"]},
        "ttl_minutes": NUMBER_OR_STRING,
        "maintenance": {"type": "object", "required": ["enabled"],
                        "properties": {"enabled": {"type": "boolean"}}},
    },
}

INSTRUMENT_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["lot_step"], "additionalProperties": False,
    "properties": {"lot_step": NUMBER_OR_STRING, "min_qty": NUMBER_OR_STRING,
                   "min_notional": NUMBER_OR_STRING, "fractional_step": NUMBER_OR_STRING},
}


def body_schema(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True,
                            "content": {"application/json": {"schema": schema}}}}

REDELIVER_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"fo_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 10000},
                   "since": {"type": "string", "format": "date-time"}},
}

ROTATE_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "properties": {"overlap_seconds": {"type": "integer", "minimum": 0, "maximum": 604800},
                   "secret": {"type": "string", "description": "Institutional plan: bring "
                              "your own whsec_ key"}},
}

INVITE_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["email"], "additionalProperties": False,
    "properties": {"email": {"type": "string", "format": "email"},
                   "role": {"type": "string", "enum": ["owner", "ops", "auditor", "follower"]}},
}

TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["grant_type"],
    "properties": {"grant_type": {"type": "string",
                                  "enum": ["authorization_code", "client_credentials"]},
                   "client_id": {"type": "string"}, "client_secret": {"type": "string"},
                   "code": {"type": "string"}, "redirect_uri": {"type": "string"},
                   "code_verifier": {"type": "string"}, "scope": {"type": "string"}},
}


PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "code"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                   "status": {"type": "integer"}, "detail": {"type": "string"},
                   "code": {"type": "string"}, "field": {"type": ["string", "null"]}},
}

_ERRORS = {
    400: "malformed request (bad JSON, missing Idempotency-Key)",
    401: "missing or refused bearer token",
    403: "the token lacks the scope, or the plan lacks the feature",
    404: "not found (or not visible to this caller)",
    409: "conflicts with the current state",
    413: "body too large",
    422: "validation failed; `field` names the input",
    429: "rate limited; see Retry-After",
}
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"description": text,
             "content": {"application/problem+json": {"schema": PROBLEM_SCHEMA}}}
    for status, text in _ERRORS.items()
}
