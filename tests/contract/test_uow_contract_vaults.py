"""The vault settings update, on every backend: only the named columns of the tenant's own
vault change, JSON columns round-trip."""

from __future__ import annotations

from tests.contract import test_uow_contract_support as support
from tests.contract.test_uow_contract_support import Db, seed_world

backend, backend_source, sqlite_template, pg_database = (
    support.backend, support.backend_source, support.sqlite_template, support.pg_database)


async def test_vault_update_changes_the_named_columns_of_the_tenants_vault(backend: Db
                                                                           ) -> None:
    await seed_world(backend)
    before = await backend.read(lambda u: u.vaults.get("tnt_a", "VA"))
    await backend.run(lambda u: u.vaults.update(
        "tnt_a", "VA", label="Renamed", public=True, personas=["Ares"],
        risk_profile={"style": "aggressive", "max_drawdown_pct": "7.5"},
        rails={"fiat": False, "crypto": True}))
    after = await backend.read(lambda u: u.vaults.get("tnt_a", "VA"))
    assert (after.label, after.public, list(after.personas)) == ("Renamed", True, ["Ares"])
    assert after.risk_profile == {"style": "aggressive", "max_drawdown_pct": "7.5"}
    assert after.rails == {"fiat": False, "crypto": True}
    assert (after.maintenance, after.created_at) == (before.maintenance, before.created_at)
    # through another tenant: nothing changes
    await backend.run(lambda u: u.vaults.update("tnt_b", "VA", label="hijacked"))
    assert (await backend.read(lambda u: u.vaults.get("tnt_a", "VA"))).label == "Renamed"
