"""aiosqlite with one thread hop per statement.

aiosqlite runs every call on the connection's own thread and wakes the event loop with the
answer. SQLAlchemy's adapter makes four such calls for each SELECT (open a cursor, execute,
fetch all, close) and three for every other statement. Each hop is a queue hand-off plus a
loop wake-up, which on a busy two-core machine costs more than the statement itself: the
order path runs about twenty statements, so the hops were most of its time.

:class:`OneHopConnection` answers ``cursor()`` with a :class:`OneHopCursor`, which does the
whole statement (execute, fetch every row, close) in one call on the connection's thread and
keeps the rows; fetching them afterwards costs nothing. Only the fully buffered reads
SQLAlchemy already does (no server-side cursors on SQLite here) are supported.

It relies on two aiosqlite internals (``Connection._execute`` and ``Connection._conn``),
which are stable across the versions the constraints allow; the SQLite contract tests cover
both.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import deque
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiosqlite

from vanta.domain.money import EXACT

NET_QTY = "vanta_net_qty"


class NetQuantity:
    """SQLite aggregate ``vanta_net_qty(side, qty)``: buys minus sells, summed exactly.
    Quantities are text on SQLite (its own SUM would go through floating point); summing
    them here, on the connection's thread, spares the caller reading every row back."""

    def __init__(self) -> None:
        self.total = Decimal(0)

    def step(self, side: str, qty: object) -> None:
        if qty is None:
            return
        d = Decimal(str(qty))
        self.total = EXACT.add(self.total, d if side == "buy" else -d)

    def finalize(self) -> str:
        return str(self.total)


class OneHopCursor:
    """The subset of ``aiosqlite.Cursor`` SQLAlchemy's adapter uses, one hop per statement."""

    arraysize = 1

    def __init__(self, conn: OneHopConnection) -> None:
        self._conn = conn
        self._rows: deque[Any] = deque()
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None

    async def __aenter__(self) -> OneHopCursor:
        return self  # nothing to open: the sqlite3 cursor lives for one statement

    async def __aexit__(self, *_: object) -> None:
        self._rows.clear()

    def _run(self, sql: str, parameters: Any, many: bool) -> None:
        """On the connection's thread: the statement and all its rows."""
        cur = self._conn._conn.cursor()
        try:
            if many:
                cur.executemany(sql, parameters)
            elif parameters is None:
                cur.execute(sql)
            else:
                cur.execute(sql, parameters)
            self.description = cur.description
            self._rows = deque(cur.fetchall()) if cur.description else deque()
            self.rowcount = cur.rowcount
            self.lastrowid = cur.lastrowid
        finally:
            cur.close()

    async def execute(self, sql: str, parameters: Any = None) -> OneHopCursor:
        await self._conn._execute(self._run, sql, parameters, False)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> OneHopCursor:
        await self._conn._execute(self._run, sql, parameters, True)
        return self

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        n = min(size or self.arraysize, len(self._rows))
        return [self._rows.popleft() for _ in range(n)]

    async def fetchall(self) -> Sequence[Any]:
        rows = list(self._rows)
        self._rows.clear()
        return rows

    async def close(self) -> None:
        self._rows.clear()


class OneHopConnection(aiosqlite.Connection):
    def cursor(self) -> OneHopCursor:  # type: ignore[override]
        return OneHopCursor(self)


def connect(database: str | Path, *, iter_chunk_size: int = 64,
            **kwargs: Any) -> OneHopConnection:
    """What ``aiosqlite.connect`` does, with :class:`OneHopConnection` (for SQLAlchemy's
    ``async_creator_fn``); the worker thread is a daemon, as SQLAlchemy makes aiosqlite's."""
    loc = str(database) if isinstance(database, Path) else database

    def connector() -> sqlite3.Connection:
        conn = sqlite3.connect(loc, **kwargs)
        conn.create_aggregate(NET_QTY, 2, NetQuantity)
        return conn

    conn = OneHopConnection(connector, iter_chunk_size)
    # aiosqlite before 0.22 was itself the thread; from 0.22 it holds one
    thread = conn if isinstance(conn, threading.Thread) else getattr(conn, "_thread", None)
    if isinstance(thread, threading.Thread):
        thread.daemon = True
    return conn
