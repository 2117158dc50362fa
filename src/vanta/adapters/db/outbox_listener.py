"""Wake a relay as soon as outbox rows are committed on PostgreSQL (LISTEN/NOTIFY).

Writers notify ``OUTBOX_CHANNEL`` inside the transaction that adds the rows, so the signal
arrives only once they are visible. The listener holds one connection of its own; the relay
still polls, so a lost connection or a missed signal costs latency, never a row. While the
connection is down it reconnects with a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

import asyncpg
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from vanta.adapters.db.repositories import OUTBOX_CHANNEL

log = logging.getLogger("vanta.relay.listen")


def asyncpg_dsn(url: URL) -> str:
    """The plain ``postgresql://`` DSN asyncpg takes, from the engine's SQLAlchemy URL. A
    failover URL (SQLAlchemy's ``?host=a:p&host=b:p`` form) becomes asyncpg's ``a:p,b:p``
    host list, keeping ``target_session_attrs``."""
    hosts = url.query.get("host")
    if isinstance(hosts, tuple):
        user = url.set(drivername="postgresql", host=None, port=None).difference_update_query(
            ["host"]).render_as_string(hide_password=False)
        scheme, rest = user.split("://", 1)
        cred, _, tail = rest.partition("@/")
        return f"{scheme}://{cred}@{','.join(hosts)}/{tail}"
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def wake_on_commit(engine: AsyncEngine, wakeup: asyncio.Event,
                   stop: asyncio.Event) -> Coroutine[Any, Any, None] | None:
    """The listener for ``engine``'s database when it can notify (PostgreSQL), else None
    (SQLite: the process that writes the rows wakes its own workers)."""
    if engine.dialect.name != "postgresql":
        return None
    return listen_for_due_rows(asyncpg_dsn(engine.url), wakeup, stop)


async def listen_for_due_rows(dsn: str, wakeup: asyncio.Event, stop: asyncio.Event, *,
                              min_backoff_s: float = 0.5, max_backoff_s: float = 10.0) -> None:
    """Set ``wakeup`` on every notification until ``stop`` is set."""
    backoff = min_backoff_s

    def on_notify(*_: Any) -> None:
        wakeup.set()

    while not stop.is_set():
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(dsn)
            lost = asyncio.Event()
            conn.add_termination_listener(lambda _c, lost=lost: lost.set())
            await conn.add_listener(OUTBOX_CHANNEL, on_notify)
            wakeup.set()  # rows may have been committed while nobody listened
            backoff = min_backoff_s
            waiters = [asyncio.ensure_future(lost.wait()), asyncio.ensure_future(stop.wait())]
            try:
                await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
            if not stop.is_set():
                log.warning("outbox listener lost its connection; reconnecting")
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError,
                asyncpg.exceptions.TargetServerAttributeNotMatched) as e:
            # the last: a failover URL while no host accepts writes yet (mid promotion)
            log.warning("outbox listener cannot connect; the relay keeps polling",
                        extra={"error": repr(e), "in_s": backoff})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(max_backoff_s, backoff * 2)
        finally:
            if conn is not None and not conn.is_closed():
                with contextlib.suppress(Exception):
                    await conn.close(timeout=2)
