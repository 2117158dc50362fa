"""SQLite writes: one statement per thread hop, writers queued in process, and the disk sync
chosen per unit of work (an acknowledged write waits for the disk, bookkeeping does not)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from vanta.adapters.db import engine as db_engine
from vanta.adapters.db.engine import make_engine
from vanta.adapters.db.sqlite_driver import OneHopCursor
from vanta.adapters.db.uow import SqlUnitOfWork
from vanta.application.ports.uow import Busy, Conflict

FULL, NORMAL = 2, 1  # PRAGMA synchronous


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    e = make_engine(f"sqlite+aiosqlite:///{tmp_path / 'w.db'}")
    async with e.begin() as c:
        await c.execute(text("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)"))
    yield e
    await e.dispose()


async def sync_level(uow: SqlUnitOfWork) -> int:
    assert uow.conn is not None
    return int((await uow.conn.execute(text("PRAGMA synchronous"))).scalar_one())


async def test_statements_run_on_the_one_hop_cursor(engine: AsyncEngine) -> None:
    async with engine.begin() as c:
        raw = await c.get_raw_connection()
        assert isinstance(raw.driver_connection.cursor(), OneHopCursor)
        await c.execute(text("INSERT INTO t (k, v) VALUES (:k, :v)"),
                        [{"k": i, "v": "a"} for i in range(5)])  # executemany
        res = await c.execute(text("UPDATE t SET v = 'b' WHERE k < 3"))
        assert res.rowcount == 3
        back = await c.execute(text("UPDATE t SET v = 'c' WHERE k = 4 RETURNING k, v"))
        assert back.all() == [(4, "c")]
        rows = (await c.execute(text("SELECT k, v FROM t ORDER BY k"))).all()
        assert rows == [(0, "b"), (1, "b"), (2, "b"), (3, "a"), (4, "c")]
        with pytest.raises(Conflict):  # driver errors still come through, translated
            await c.execute(text("INSERT INTO t (k, v) VALUES (1, 'x')"))


async def test_sync_level_follows_the_unit_of_work(engine: AsyncEngine) -> None:
    for durable, level in ((True, FULL), (False, NORMAL), (True, FULL), (False, NORMAL)):
        async with SqlUnitOfWork(engine, durable=durable) as uow:
            assert await sync_level(uow) == level
            await uow.commit()


async def test_writers_take_turns_without_lock_errors(engine: AsyncEngine) -> None:
    inside = 0
    most = 0

    async def write(k: int) -> None:
        nonlocal inside, most
        async with SqlUnitOfWork(engine) as uow:
            inside += 1
            most = max(most, inside)
            assert uow.conn is not None
            await uow.conn.execute(text("INSERT INTO t (k, v) VALUES (:k, 'w')"), {"k": k})
            await asyncio.sleep(0.001)
            inside -= 1
            await uow.commit()

    await asyncio.gather(*(write(k) for k in range(40)))
    assert most == 1
    async with engine.connect() as c:
        assert (await c.execute(text("SELECT count(*) FROM t"))).scalar_one() == 40


async def test_a_writer_that_waits_too_long_gets_busy(
        engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_engine, "SQLITE_BUSY_S", 0.05)
    async with SqlUnitOfWork(engine):
        with pytest.raises(Busy):
            async with SqlUnitOfWork(engine):
                pass
    async with SqlUnitOfWork(engine) as uow:  # the queue is free again
        await uow.commit()
