"""Schemathesis generates requests from /openapi.json for every operation: the API must never
answer 5xx, and every answer must match what the schema documents (status codes, content
types, problem+json bodies)."""

from __future__ import annotations

import asyncio
import tempfile
import uuid
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance

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


@schema.exclude(path="/v1/feed").parametrize()
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case: schemathesis.Case) -> None:
    # Two checks are off, on purpose: schema-valid bodies can still be refused on meaning (an
    # unknown vault, a key that is not whsec_, a cap on a Core plan), and unknown query
    # parameters are ignored, as HTTP APIs conventionally do (OpenAPI cannot forbid them).
    # Every answer must still be documented and never a 5xx.
    case.call_and_validate(headers={"Authorization": f"Bearer {TOKEN}",
                                    "Idempotency-Key": uuid.uuid4().hex},
                           excluded_checks=[positive_data_acceptance, negative_data_rejection])
