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
from collections import deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import aiosqlite


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
        return sqlite3.connect(loc, **kwargs)

    conn = OneHopConnection(connector, iter_chunk_size)
    conn._thread.daemon = True
    return conn
