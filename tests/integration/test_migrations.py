"""The Alembic migrations apply, roll back and re-apply on SQLite and on PostgreSQL."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect

from tests.pg import pg_column_type, pg_tables, temp_database
from vanta.adapters.db.migrate import downgrade, upgrade
from vanta.adapters.db.tables import metadata

EXPECTED = {t.name for t in metadata.sorted_tables}


def _sqlite_tables(path: Path) -> set[str]:
    eng = create_engine(f"sqlite:///{path}")
    try:
        return set(inspect(eng).get_table_names()) - {"alembic_version"}
    finally:
        eng.dispose()


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    db = tmp_path / "m.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url)
    assert _sqlite_tables(db) == EXPECTED
    downgrade(url)
    assert _sqlite_tables(db) == set()
    upgrade(url)
    assert _sqlite_tables(db) == EXPECTED


@pytest.mark.postgres
def test_postgres_upgrade_downgrade_upgrade(postgres_url: str) -> None:
    with temp_database(postgres_url) as url:
        upgrade(url)
        assert asyncio.run(pg_tables(url)) == EXPECTED
        assert asyncio.run(pg_column_type(url, "subscriptions", "entitlements")) == "jsonb"
        assert asyncio.run(pg_column_type(url, "follower_orders", "qty")) == "numeric"
        downgrade(url)
        assert asyncio.run(pg_tables(url)) == set()
        upgrade(url)
        assert asyncio.run(pg_tables(url)) == EXPECTED
