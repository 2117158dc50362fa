"""Schemathesis generates requests from /openapi.json for every operation: the API must never
answer 5xx, every answer must match what the schema documents (status codes, content
types, problem+json bodies), input the schema allows must be accepted (or refused on meaning:
401/403/404/409) and input it forbids must be refused."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

from tests.fakes.vetter import FakeTargetVetter
from tests.http_helpers import UNLIMITED
from vanta.application.principal import ALL_SCOPES
from vanta.application.seed import create_tenant, create_vault
from vanta.application.tenancy import grant_plan
from vanta.bootstrap import build
from vanta.config import Settings
from vanta.entrypoints.api.app import create_app


def _app():  # type: ignore[no-untyped-def]
    data = Path(tempfile.mkdtemp(prefix="vanta-fuzz-"))
    c = build(Settings(data_dir=data, **UNLIMITED))
    c.vetter = FakeTargetVetter()  # generated hostnames must not reach a resolver

    async def seed() -> None:
        await c.migrate()
        await create_tenant(c.uow(), tenant_id="tnt_a", name="A")
        await grant_plan(c.uow(), tenant_id="tnt_a", plan_id="institutional", actor="fuzz")
        await create_vault(c.uow(), tenant_id="tnt_a", vault_id="VA", label="A")
        await c.engine.dispose()  # the test client runs its own event loop

    asyncio.run(seed())
    return create_app(c, run_dispatcher=False), c.issuer.issue(
        "fuzzer", "tnt_a", [*ALL_SCOPES, "platform:admin"])


APP, TOKEN = _app()
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
# A body over the size limit is refused before it is read (413): a rejection like any other.
_rejection = schema.config.checks.negative_data_rejection
_rejection.expected_statuses = [*(_rejection.expected_statuses or []), "413"]


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [x for v in value.values() for x in _leaves(v)]
    if isinstance(value, list):
        return [x for v in value for x in _leaves(v)]
    return [value]


def _fractional_float(value: Any) -> bool:
    return isinstance(value, float) and not value.is_integer()


def _future(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 20 or value[4:5] != "-":
        return False
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")) > datetime.now(UTC)
    except (ValueError, TypeError):
        return False


@schema.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """Schema-valid input the schema cannot tell apart from what the server refuses on
    meaning, left out of the positive cases (of the negative cases, only those with a query
    parameter the operation does not declare):

    * a binary float with a fraction: JSON Schema cannot bound decimal places
      (``multipleOf`` on floats is inexact), and quantities are exact with at most 2, 8 or
      12 places; decimal strings (whose pattern states the places) and integers run;
    * a timestamp in the future where the past is required (NAVs, flows, period ends:
      documented on the fields; ``format: date-time`` has no bound);
    * a cursor: only the ones this API issued are valid (tests/api walk real cursors and
      refuse forged ones);
    * an instrument whose ``fractional_step`` exceeds its ``lot_step``, or a Replay Studio
      window whose ``to`` is before its ``from`` (one field against another: not
      expressible in JSON Schema; documented on the field);
    * a branding logo: its bytes must be an image of the type it names (a PNG's header is
      not expressible in JSON Schema; documented on the field)."""
    meta = case.meta
    if meta is None:
        return True
    if not meta.generation.mode.is_positive:
        # Unknown query parameters are ignored, as HTTP APIs conventionally do (OpenAPI
        # cannot forbid them); Schemathesis tolerates most but not all (a name such as ""
        # or one with control characters counts as a negation), so none is sent.
        declared = {p.name for p in case.operation.query}
        return set(case.query or {}) <= declared
    body = case.body if isinstance(case.body, dict) else {}
    leaves = _leaves(body) + _leaves(case.query or {})
    if any(_fractional_float(v) or _future(v) for v in leaves) or "cursor" in (case.query or {}):
        return False
    if case.operation.path == "/v1/replay-studio/runs" and "from" in body and "to" in body:
        try:
            return bool(datetime.fromisoformat(str(body["to"]).replace("Z", "+00:00"))
                        >= datetime.fromisoformat(str(body["from"]).replace("Z", "+00:00")))
        except (ValueError, TypeError):
            return True
    if case.operation.path == "/v1/tenants/me/branding" and body.get("logo") is not None:
        return False
    if case.operation.path == "/v1/instruments/{venue}/{symbol}":
        try:
            return Decimal(str(body.get("fractional_step") or 0)) <= \
                Decimal(str(body.get("lot_step")))
        except ArithmeticError:
            return True
    return True


@schema.exclude(path="/v1/feed").parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    # positive_data_acceptance lets refusals on meaning pass (401, 403, 404, 409: an unknown
    # vault, a feature the plan lacks); a 422 for schema-valid input fails the test.
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}",
                                    "Idempotency-Key": uuid.uuid4().hex},
                           additional_checks=[positive_data_acceptance, negative_data_rejection])
