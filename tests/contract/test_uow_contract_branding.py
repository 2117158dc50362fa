"""The tenant branding repository, on every backend: one row per tenant, replaced whole,
read back exactly (a logo's base64 text too), never another tenant's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import Db, seed_world
from vanta.application.ports.branding import BrandingRecord

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)

AT = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


def _row(tenant: str, **over: Any) -> dict[str, Any]:
    return {"tenant_id": tenant, "display_name": "Acme Capital", "accent_color": "#0a7a5c",
            "logo_type": "image/png", "logo_data": "iVBORw0KGgo=" * 100, "updated_at": AT,
            "updated_by": "owner-1", **over}


async def test_branding_is_put_replaced_and_read_per_tenant(backend: Db) -> None:
    await seed_world(backend)
    assert await backend.read(lambda u: u.branding.get("tnt_a")) is None
    await backend.run(lambda u: u.branding.put(_row("tnt_a")))
    got = await backend.read(lambda u: u.branding.get("tnt_a"))
    assert got == BrandingRecord.from_row(_row("tnt_a"))
    await backend.run(lambda u: u.branding.put(_row("tnt_a", display_name="Acme",
                                                    logo_type=None, logo_data=None)))
    again = await backend.read(lambda u: u.branding.get("tnt_a"))
    assert (again.display_name, again.logo_type, again.logo_data) == ("Acme", None, None)
    assert await backend.read(lambda u: u.branding.get("tnt_b")) is None

