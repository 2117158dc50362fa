"""A unique-key collision reaches the application as the port's Conflict."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, String, Table, UniqueConstraint, insert
from sqlalchemy.exc import IntegrityError

from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.errors import unique_conflicts
from vanta.application.ports.uow import Conflict

metadata = MetaData()
things = Table("things", metadata, Column("id", Integer, primary_key=True),
               Column("label", String(20)), UniqueConstraint("label"))


async def test_duplicate_key_raises_the_ports_conflict_and_stays_an_integrity_error(
        tmp_path: Path) -> None:
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'c.db'}")
    try:
        async with engine.connect() as conn:
            await conn.run_sync(metadata.create_all)
            await conn.execute(insert(things).values(label="q1"))
            with pytest.raises(Conflict) as caught:
                async with unique_conflicts():
                    await conn.execute(insert(things).values(label="q1"))
            # code that still catches the driver's error keeps working
            assert isinstance(caught.value, IntegrityError)
            async with unique_conflicts():  # no collision, nothing raised
                await conn.execute(insert(things).values(label="q2"))
    finally:
        await engine.dispose()
