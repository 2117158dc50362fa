"""On PostgreSQL the relay is woken by the commit that adds outbox rows (LISTEN/NOTIFY), not
by its next poll; it keeps being woken after its listening connection is killed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet

from tests.pg import temp_database
from vanta.adapters.bus.inprocess import InProcessBus
from vanta.adapters.db.outbox_listener import wake_on_commit
from vanta.application.bus import BusMessage
from vanta.application.manager_orders import DISPATCH_TOPIC
from vanta.bootstrap import Container, build
from vanta.config import Settings
from vanta.entrypoints.workers.relay import Relay

POLL_S = 30.0  # far longer than any wait below: only a notification can wake the relay


@pytest.fixture
def pg_url(postgres_url: str) -> Iterator[str]:
    with temp_database(postgres_url) as url:
        yield url


class Running:
    def __init__(self, c: Container) -> None:
        self.c = c
        self.arrived: asyncio.Queue[float] = asyncio.Queue()

    async def on_message(self, msg: BusMessage) -> None:
        await self.arrived.put(time.monotonic())
        await msg.ack()

    async def add_row(self, key: str) -> float:
        async with self.c.uow() as uow:
            await uow.outbox.add_many(DISPATCH_TOPIC, [(key, {"fo_id": key})],
                                      self.c.dispatcher.clock())
            await uow.commit()
        return time.monotonic()


@pytest.fixture
async def running(pg_url: str, tmp_path: Path) -> AsyncIterator[Running]:
    c = build(Settings(data_dir=tmp_path / "data", database_url=pg_url,
                       master_key=Fernet.generate_key().decode()))
    await c.migrate()
    bus = InProcessBus()
    r = Running(c)
    await bus.subscribe("mirror.dispatch", "test", r.on_message, concurrency=4)
    relay = Relay(c.uow, bus, poll_seconds=POLL_S)
    stop = asyncio.Event()
    listener = wake_on_commit(c.engine, relay.wakeup, stop)
    assert listener is not None
    tasks = [asyncio.create_task(relay.run(stop)), asyncio.create_task(listener)]
    await _listening(pg_url)
    await asyncio.sleep(0.2)  # the relay's first pass (woken on connect) finds nothing
    try:
        yield r
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await bus.close()
        await c.close()


async def _listening(pg_url: str, *, timeout: float = 10.0) -> int:
    """The backend pid of the listener's connection, once it is listening."""
    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid = await conn.fetchval(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'LISTEN %'")
            if pid is not None:
                return int(pid)
            await asyncio.sleep(0.05)
    finally:
        await conn.close()
    raise TimeoutError("the outbox listener never listened")


async def test_a_committed_row_wakes_the_relay_at_once(running: Running) -> None:
    committed = await running.add_row("fo-1")
    arrived = await asyncio.wait_for(running.arrived.get(), 5)
    assert arrived - committed < 2.0  # the relay's poll is 30 s away


async def test_the_listener_reconnects_after_its_connection_is_killed(
    running: Running, pg_url: str,
) -> None:
    pid = await _listening(pg_url)
    conn = await asyncpg.connect(pg_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
    new_pid = await _listening(pg_url)
    assert new_pid != pid
    committed = await running.add_row("fo-2")
    arrived = await asyncio.wait_for(running.arrived.get(), 5)
    assert arrived - committed < 2.0


async def test_the_polling_dispatcher_listens_too_and_stops_on_sigterm(
    pg_url: str, tmp_path: Path,
) -> None:
    """`vanta dispatch --no-until-idle` on PostgreSQL holds a listening connection, and its
    listener ends with it on SIGTERM."""
    env = {**os.environ, "VANTA_DATA_DIR": str(tmp_path / "data"), "VANTA_DATABASE_URL": pg_url,
           "VANTA_MASTER_KEY": Fernet.generate_key().decode()}  # production: external key
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vanta.entrypoints.cli.main", "dispatch", "--no-until-idle",
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    try:
        await _listening(pg_url, timeout=30)
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 15)
        assert proc.returncode == 0, err.decode()[-2000:]
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
